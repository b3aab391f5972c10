"""ONNX export (optionally int8-quantized) and an onnxruntime predictor for saved ftkit models.

    export.export_onnx(model_dir, out, quantize="int8", check_data=test_file)  # torch side, once
    runtime.load_onnx(folder).predict([...])                                   # onnxruntime side

The ONNX predictors subclass the task's own torch predictors and replace only the forward pass,
so reading, windows, aggregation, temperature and output format are the task's code, not a copy.
Nothing heavy is imported here: `import ftkit` stays fast.
"""
