"""From a person's drawing or photo to the network's 28×28 input, and the Draw page's reading of it.

`convert` turns canvas pixels and image files into MNIST-like digits (contract: ``canvas_to_mnist``,
``image_file_to_mnist``); `reading` turns the draw model's answer into a verdict (contract: ``read_digit``,
``DigitReading``: a digit, "not sure" or "not a digit"); `fonts` and `nondigits` make the draw model's extra
training data (typeset digits, synthetic non-digits).
"""

from cnnviz.drawing.convert import canvas_to_mnist, image_file_to_mnist, ink_to_mnist
from cnnviz.drawing.reading import DigitReading, read_digit

__all__ = ["DigitReading", "canvas_to_mnist", "image_file_to_mnist", "ink_to_mnist", "read_digit"]
