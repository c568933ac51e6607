"""Cold-start recommender models: task datasets, two-tower model, meta-learning, transfer, registry, ranking.

Needs only torch, numpy, pyarrow and safetensors (no Spark, no Feast), so it runs on the Spark driver or on a
separate GPU box. Modules: ``data`` (task datasets), ``spec`` (feature spec), ``towers`` (the model),
``meta`` (``adapt`` and the MAML family), ``transfer`` (pretraining, fine-tuning, from scratch),
``checkpoint`` (registry), ``metrics``, ``scoring``, ``ranking`` (one interface for every method), ``train``.
"""
