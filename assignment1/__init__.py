"""KTH DD2424 Assignment 1: a one-layer softmax classifier on CIFAR-10, with numpy.

What the assignment is about:

- :mod:`~assignment1.data`: load, split, normalize and flip CIFAR-10 (:mod:`~assignment1.fetch`
  downloads and verifies it);
- :mod:`~assignment1.model`: scores, softmax and sigmoid, the losses and their gradients;
- :mod:`~assignment1.gradcheck`: numerical gradients to check them against;
- :mod:`~assignment1.train`: mini-batch gradient descent, the textbook loop
  (:mod:`~assignment1.train_fast` runs the same loop faster);
- :mod:`~assignment1.plots`: the figures.

Around it: :mod:`~assignment1.config` (paths), :mod:`~assignment1.validate`
(parameter checks), :mod:`~assignment1.cli` (``python -m assignment1``),
:mod:`~assignment1.files` and :mod:`~assignment1.progress` (atomic writes,
progress bars), and :mod:`assignment1.report`, the machinery that turns the
section notebooks into the report (``python -m assignment1.report``).
"""

__version__ = "0.1.0"
