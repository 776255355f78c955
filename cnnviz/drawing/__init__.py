"""From a person's drawing or photo to the network's 28×28 input, and the Draw page's reading of it.

`convert` turns canvas pixels and image files into MNIST-like digits (contract: ``canvas_to_mnist``,
``image_file_to_mnist``).
"""

from cnnviz.drawing.convert import canvas_to_mnist, image_file_to_mnist, ink_to_mnist

__all__ = ["canvas_to_mnist", "image_file_to_mnist", "ink_to_mnist"]
