"""A model worker process: the model (service.model) serving one front over a Unix socket
(`python -m service.model_worker`). It never imports the web stack."""
