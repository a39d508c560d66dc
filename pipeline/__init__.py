"""What composes the lower layers into the tool's jobs, one subpackage per concern.

| subpackage | owns | may import (besides core, data, extractors, model) |
|---|---|---|
| pipeline.cluster | joining or starting Ray, shipping this code to its workers | - |
| pipeline.extraction | clips + transcripts -> features and dataset files; the per-clip step, cache, local and Ray backends | cluster |
| pipeline.importers | other corpora and formats -> dataset files (.csd, the seed's pickle, text CSVs, MELD, GoEmotions, RAVDESS) | extraction |
| pipeline.prediction | checkpoints + a clip -> per-utterance results, and their table, JSON, CSV and plot | extraction |
| pipeline.training | dataset -> checkpoint (runs, seeds, grids, Ray), and evaluating checkpoints on data | cluster, extraction, importers, prediction |
| pipeline.serving | the web page and HTTP API over loaded predictors | prediction |
| pipeline.release | the shipped model: its recipe (`make pretrained`) and its card | everything above |

A subpackage imports only those to its left in this order: cluster, extraction, importers, prediction, training,
serving, release (tests/test_layout.py checks it, with the layers below: core < data < extractors, model <
pipeline < commands, cli.py, demo).
"""

# the order of the rule above: each subpackage may import the ones before it, never one after it
ORDER = ("cluster", "extraction", "importers", "prediction", "training", "serving", "release")
