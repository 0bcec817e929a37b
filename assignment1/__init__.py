"""KTH DD2424 Assignment 1: a one-layer softmax classifier on CIFAR-10, with numpy.

Three layers, each importing only from those before it:

1. The assignment: :mod:`~assignment1.data` (load, split, normalize and flip
   CIFAR-10; :mod:`~assignment1.fetch` downloads and verifies it),
   :mod:`~assignment1.model` (scores, softmax and sigmoid, the losses and their
   gradients), :mod:`~assignment1.gradcheck` (numerical gradients),
   :mod:`~assignment1.train` (mini-batch gradient descent, the textbook loop;
   :mod:`~assignment1.sweep` trains several runs in one pass), :mod:`~assignment1.plots`
   (the figures), with :mod:`~assignment1.config` (a run's settings, each
   declared and checked once), :mod:`~assignment1.validate`,
   :mod:`~assignment1.files` and :mod:`~assignment1.page` (how wide a figure may be).
2. :mod:`assignment1.experiments`: many runs, stored and in parallel; the
   search, statistics and findings; the explorer; the command line
   (``python -m assignment1``).
3. :mod:`assignment1.report`: the section notebooks into one document
   (``python -m assignment1.report``).
"""

__version__ = "0.1.0"
