"""Forecasting models, one module per family. Importing this package never imports TensorFlow."""
