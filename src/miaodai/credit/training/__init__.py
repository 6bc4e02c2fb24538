"""Model training (the ``model`` extra: optbinning, scikit-learn, pandas, matplotlib, LightGBM).

Nothing in the serving path imports this package: ``miaodai model train`` turns a labelled CSV into
a JSON artifact (a points table scored by :mod:`miaodai.credit.scorecard`, or a LightGBM challenger
served by :mod:`miaodai.credit.gbm`) with a cross-validated report; ``miaodai model synth`` makes the
synthetic applicants the default model of a fresh install is trained on. See docs/model.md.
"""
