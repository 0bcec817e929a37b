"""Progress bars: widgets in Jupyter (where ipywidgets is installed), text in a terminal, nothing when off."""

from __future__ import annotations

from tqdm import tqdm as _text_bar


def bar(iterable=None, *, show: bool = True, **kwargs):
    """A tqdm bar over ``iterable`` (or updated by hand); ``show=False`` gives one that prints nothing."""
    if not show:
        return _text_bar(iterable, disable=True, **kwargs)
    # Imported only for a bar that is shown: inside a kernel without ipywidgets, tqdm.auto warns at import.
    from tqdm.auto import tqdm
    return tqdm(iterable, **kwargs)
