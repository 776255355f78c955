"""cnnviz: watch a convolutional neural network learn (a from-scratch NumPy CNN and a Streamlit app)."""

__version__ = "0.1.0"
