"""How wide the book shows a figure, so that every label in it stays legible.

The book's text column is 784 CSS pixels wide (sphinx-book-theme in a 1400 px window) and the
notebooks save their figures at matplotlib's 100 dpi, with a tight bounding box. A figure up to
``PAGE_WIDTH`` inches wide is therefore shown at its own size, where a font of ``MIN_FONTSIZE``
points measures ``8 * 100 / 96 = 8.3`` points on screen; a wider figure is scaled down to the
column, and its text with it (a 14-inch figure's 8-point labels shrink to 4.6 points). The figure
functions keep to both numbers; tests/test_figures_legible.py measures the figures the chapters
draw.
"""

#: inches: the width of the book's text column at 100 dpi (784 px, minus a tight bbox's margin)
PAGE_WIDTH = 7.6
#: points: the smallest font a figure uses (the issue's floor is 8 pt at the rendered size)
MIN_FONTSIZE = 8
