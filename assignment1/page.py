"""The report's page, as its figures (:mod:`assignment1.plots`) and its document (``assignment1.report``) share it.

Apart from the figures so that the report's runner, which places them on the page, never imports matplotlib.
"""

MAX_WIDTH = 6.5  # inches: the width of the report's text on A4 and Letter; no figure is wider
DPI = 100  # a figure's pixels per inch on screen (its CSS pixels); its retina PNG has twice as many
