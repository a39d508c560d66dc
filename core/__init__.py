"""The project's shared base, below everything else: errors a user can fix (core.errors), the file boundaries
(core.fileio: inputs that are regular files, atomic writes, outputs never written over inputs, the safe pickle
loader, strict JSON), the numbers a user may give (core.options), the one progress hook (core.progress) and the
loopback test for servers (core.network).

Imports nothing of the project: data/, extractors/, model/ and pipeline/ import it, never the other way round.
"""
