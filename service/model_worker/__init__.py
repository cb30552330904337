"""A model worker process: tokenizer, ONNX session and classifier, serving one front over a Unix
socket (`python -m service.model_worker`). It never imports the web stack."""
