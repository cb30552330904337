"""The model's code, whoever runs it (a model worker, colocated mode, the build, the benchmarks):
tokenizer, ONNX Runtime session, classifier."""
