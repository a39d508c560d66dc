"""The subcommands of cli.py, one module each (add_<name> declares its options, cmd_<name> runs it); common holds
what they all share (parser, exit codes, progress bars) and options the options several of them take.

Commands sit on top: they may import every package of the project, and nothing imports them but cli.py (and the
demo, for its progress bars).
"""

from commands.evaluate import add_evaluate
from commands.extract import add_extract
from commands.imports import add_import
from commands.info import add_info
from commands.predict import add_predict
from commands.serve import add_serve
from commands.train import add_train

SUBCOMMANDS = (add_extract, add_import, add_train, add_evaluate, add_predict, add_serve, add_info)
