"""KTH DD2424 Assignment 1: a one-layer softmax classifier on CIFAR-10, with numpy.

Modules: :mod:`config` (paths), :mod:`fetch` (download and verify),
:mod:`data` (load, split, normalize, flip), :mod:`model` (scores, losses,
gradients), :mod:`gradcheck` (numerical gradients), :mod:`train`
(mini-batch gradient descent), :mod:`cli` (``python -m assignment1``).
"""

__version__ = "0.1.0"
