"""Release: the shipped model in model/pretrained: its recipe from the real corpora (pretrained, `make
pretrained`) and its card written from the figures measured (model_card).

May import everything below it in pipeline/.
"""
