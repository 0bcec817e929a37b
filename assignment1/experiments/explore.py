"""Train the one-layer network live in JupyterLab: controls, growing curves, class templates.

:class:`Explorer` is what ``notebooks/00_explore.ipynb`` shows. Its controls set
what the assignment varies (lambda, eta, mini-batch size, epochs, flips, loss,
a learning-rate schedule, the seed); Train trains that setting in a background
thread, so the controls stay live, and the curves grow epoch by epoch, redrawn
by a second thread from the latest history at most every
:data:`FRAME_INTERVAL` seconds, so training never waits for a drawing; Stop
ends the run after the epoch under way and keeps what it learnt. Each finished
run adds a row to the table of this session's runs and stays on the curves as
a thin line. Runs go through the run store: a setting trained before (here or
by ``make report``) comes back at once. Test accuracy is shown only on
request: choosing settings on it would make it one more validation set.

The widgets only call methods of the explorer (:meth:`Explorer.start_training`,
:meth:`Explorer.stop`), which tests call the same way.
"""

from __future__ import annotations

import base64
import io
import threading
import time
from dataclasses import dataclass
from types import SimpleNamespace

import ipywidgets as w
from matplotlib.figure import Figure

from .. import plots
from ..config import RunConfig
from .runs import Experiments, RunResult, train_run, with_test
from .search import decay_milestones
from .tabular import table

SCHEDULES = {"constant": False, "x0.1 at 1/2, 4/5 of epochs": True}
BATCH_SIZES = (10, 20, 50, 100, 200, 500, 1000)
#: Seconds between two drawings of the live curves: drawing holds Python's lock for about 0.2 s.
FRAME_INTERVAL = 2.0


@dataclass
class Finished:
    """A run of this session: its result, whether it came from the store, and how long it took here."""

    result: RunResult
    cached: bool
    seconds: float
    stopped: bool


def png(fig: Figure) -> bytes:
    """A Matplotlib figure as PNG at twice the screen resolution."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=2 * fig.get_dpi())
    return buf.getvalue()


@plots.styled
def live_curves(history: dict | None, earlier: list[dict], n_epochs: int | None = None) -> Figure:
    """Loss, cost and accuracy, training (solid) and validation (dashed): ``history`` bold, ``earlier`` thin.

    With ``n_epochs``, the epoch axis spans the whole run from the start, so the curves grow into it.
    """
    fig = Figure(figsize=(plots.MAX_WIDTH, 2.3), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, (key, name) in zip(axes, plots.PANELS):
        for h, color, width in [*((h, "0.75", 0.8) for h in earlier), *([(history, None, 1.5)] if history else [])]:
            for split, style in (("train", "-"), ("val", "--")):
                ax.plot(h["epoch"], h[f"{split}_{key}"], style, color=color or plots.COLORS[split], linewidth=width,
                        label={"train": "training", "val": "validation"}[split] if color is None else None)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if n_epochs:
            ax.set_xlim(0.5, n_epochs + 0.5)
    if history:
        axes[0].legend()
    return fig


class Explorer:
    """Controls, live curves, templates and a table of runs, over one data set and the run store.

    ``p`` holds the notebook's parameters: the values the controls start at, and
    the validation size, dtype, initialization and engine every run uses.
    """

    def __init__(self, p: SimpleNamespace, experiments: Experiments):
        self.p, self.experiments = p, experiments
        self.ds = experiments.dataset(p.val_size, dtype=p.dtype)
        self.finished: list[Finished] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: dict | None = None
        self.seconds_to_last_point: float | None = None  # from pressing Train to the last curve point

        log_scale = dict(base=10, readout_format=".2g", continuous_update=False, style={"description_width": "6em"})
        # checkboxes as wide as their label (by default as wide as a slider), so that the controls fit beside
        # JupyterLab's file browser in a 1280-pixel window
        self.regularize = w.Checkbox(value=p.lam > 0, description="L2 term", indent=False, layout={"width": "auto"})
        self.lam = w.FloatLogSlider(value=p.lam or 0.1, min=-4, max=0, description="λ", **log_scale)
        self.eta = w.FloatLogSlider(value=p.eta, min=-4, max=0, description="η", **log_scale)
        self.n_batch = w.Dropdown(options=sorted({*BATCH_SIZES, p.n_batch}), value=p.n_batch, description="batch",
                                  style={"description_width": "6em"})
        self.n_epochs = w.IntSlider(value=p.n_epochs, min=1, max=100, description="epochs", continuous_update=False,
                                    style={"description_width": "6em"})
        self.flip = w.Checkbox(value=p.flip, description="flip half of each batch", indent=False,
                               layout={"width": "auto"})
        self.loss = w.ToggleButtons(options=[("cross-entropy", "ce"), ("M-BCE", "mbce")], value=p.loss,
                                    style={"button_width": "9em"})
        self.schedule = w.Dropdown(options=list(SCHEDULES), value=[k for k, v in SCHEDULES.items() if v == p.decay][0],
                                   description="η schedule", style={"description_width": "6em"},
                                   layout={"width": "21em"})  # no wider than the loss buttons above it
        self.seed = w.BoundedIntText(value=p.seed, min=0, max=10**6, description="seed",
                                     style={"description_width": "6em"}, layout={"width": "14em"})
        self.train_button = w.Button(description="Train", button_style="primary", icon="play")
        self.stop_button = w.Button(description="Stop", icon="stop", disabled=True)
        self.show_test = w.Checkbox(value=False, description="show test accuracy", indent=False)
        self.progress = w.IntProgress(value=0, min=0, max=p.n_epochs, description="", layout={"width": "20em"})
        self.status = w.HTML()
        self.curves = w.Image(format="png", layout={"width": "100%", "max_width": "52em"})
        self.templates = w.Image(format="png", layout={"width": "100%", "max_width": "52em"})
        self.table = w.HTML()

        self.train_button.on_click(lambda _: self.start_training())
        self.stop_button.on_click(lambda _: self.stop())
        self.show_test.observe(lambda _: self._draw_table(), names="value")
        self.regularize.observe(lambda change: setattr(self.lam, "disabled", not change["new"]), names="value")
        self.lam.disabled = not self.regularize.value
        self._draw_curves()

    # --- what the controls say -----------------------------------------------------------------------------------

    def config(self) -> RunConfig:
        """The run the controls describe (with the notebook's validation size, dtype, initialization and engine)."""
        p, n_epochs = self.p, int(self.n_epochs.value)
        # the sliders' floats, rounded as the table shows them
        lam = float(f"{self.lam.value:.3g}") if self.regularize.value else 0.0
        milestones = decay_milestones(n_epochs) if SCHEDULES[self.schedule.value] else ()
        return RunConfig(lam=lam, eta=float(f"{self.eta.value:.3g}"), n_epochs=n_epochs,
                         n_batch=int(self.n_batch.value), seed=int(self.seed.value), loss=self.loss.value,
                         flip=bool(self.flip.value), milestones=milestones, val_size=p.val_size, dtype=p.dtype,
                         init_std=p.init_std, engine=p.engine)

    # --- training ------------------------------------------------------------------------------------------------

    @property
    def training(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start_training(self) -> None:
        """Train the controls' setting in the background (or take it from the store); nothing while a run goes on."""
        if self.training:
            return
        cfg = self.config()
        try:
            cfg.check_data_size(self.experiments.n_images)
        except ValueError as e:  # said where the reader looks: a button's errors go to a log
            self.status.value = f"<b>{e}</b> (the training set has {self.ds.train.n:,} images)"
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(cfg, time.perf_counter()), daemon=True)
        self._set_busy(True)
        self._thread.start()

    def stop(self) -> None:
        """End the run under way after its current epoch; it keeps what it learnt."""
        self._stop.set()
        self.status.value = "stopping after this epoch ..."

    def wait(self, timeout: float | None = None) -> None:
        """Block until the run under way (if any) has finished and been drawn."""
        if self._thread is not None:
            self._thread.join(timeout)

    def train(self) -> Finished:
        """Train the controls' setting and wait for it: what running the notebook top to bottom does."""
        self.start_training()
        self.wait()
        return self.finished[-1]

    def _run(self, cfg: RunConfig, pressed: float) -> None:
        try:
            key = self.experiments.key(cfg)
            result = stored = self.experiments.load(key, cfg)
            stopped = False
            if stored is None:
                self.status.value = f"training {cfg.label}, seed {cfg.seed} ..."
                self.progress.max = cfg.n_epochs
                trained = threading.Event()
                drawer = threading.Thread(target=self._draw_while, args=(trained,), daemon=True)
                drawer.start()
                try:
                    result = train_run(cfg, self.ds, on_epoch=self._on_epoch, stop=self._stop)
                finally:
                    trained.set()
                    drawer.join()
                stopped = len(result.history["epoch"]) < cfg.n_epochs and not result.diverged
                if not stopped:  # a stopped run is not the run its configuration describes
                    self.experiments.store.save(key, result)
            self.finished.append(Finished(result, cached=stored is not None, seconds=time.perf_counter() - pressed,
                                          stopped=stopped))
            self._live = None
            self._draw_curves()
            self.seconds_to_last_point = time.perf_counter() - pressed
            self.templates.value = png(plots.weights_figure([result.W], [""], self.experiments.label_names))
            self._draw_table()
            self.status.value = self._summary(self.finished[-1])
        except Exception as e:  # shown where the reader looks, not lost in a thread
            self.status.value = f"<b>error:</b> {type(e).__name__}: {e}"
            raise
        finally:
            self._set_busy(False)

    def _on_epoch(self, history: dict) -> None:
        # a copy (the loop goes on appending to its lists), drawn by the drawing thread: training does not wait
        self._live = {k: list(v) for k, v in history.items()}
        self.progress.value = len(history["epoch"])

    def _draw_while(self, trained: threading.Event) -> None:
        """Draw the latest curves while the run trains, at most every :data:`FRAME_INTERVAL` seconds."""
        drawn = None
        while not trained.wait(FRAME_INTERVAL):
            if self._live is not drawn:
                drawn = self._live
                self._draw_curves()

    # --- drawing -------------------------------------------------------------------------------------------------

    def _set_busy(self, busy: bool) -> None:
        self.train_button.disabled = busy
        self.stop_button.disabled = not busy
        if busy:
            self.progress.value = 0

    def _draw_curves(self) -> None:
        runs, live = [f.result.history for f in self.finished], self._live is not None
        # while a run trains it is the bold curve over every finished run; afterwards the last finished one is
        current, earlier = (self._live, runs) if live else (runs[-1] if runs else None, runs[:-1])
        self.curves.value = png(live_curves(current, earlier, self.progress.max if live else None))

    def _summary(self, f: Finished) -> str:
        h = f.result.history
        how = "from the run store" if f.cached else ("stopped" if f.stopped else "trained")
        return (f"{f.result.config.label}, seed {f.result.config.seed}: {len(h['epoch'])} epochs, {how} "
                f"in {f.seconds:.1f} s; final validation accuracy {h['val_acc'][-1]:.3f}")

    def test_accuracy(self, f: Finished) -> float:
        """Accuracy of a finished run on the test set (only shown when asked for)."""
        if f.result.test is None:
            f.result = with_test(f.result, self.ds)
        return f.result.test["acc"]

    def rows(self) -> list[dict]:
        """The table of this session's runs."""
        out = []
        for i, f in enumerate(self.finished, start=1):
            c, h = f.result.config, f.result.history
            row = {"run": i, "λ": f"{c.lam:g}", "η": c.eta_text, "batch": c.n_batch, "epochs": len(h["epoch"]),
                   "flip": "yes" if c.flip else "no", "loss": c.loss, "seed": c.seed,
                   "validation accuracy": f"{h['val_acc'][-1]:.3f}" if h["val_acc"] else "n/a",
                   "time (s)": f"{f.seconds:.1f}", "": "store" if f.cached else ("stopped" if f.stopped else "")}
            if self.show_test.value:
                row["test accuracy"] = f"{self.test_accuracy(f):.3f}"
            out.append(row)
        return out

    def _draw_table(self) -> None:
        rows = self.rows()
        note = ("<p><i>Test accuracy is for reporting the setting you chose, not for choosing it: "
                "compare settings on validation accuracy.</i></p>" if self.show_test.value else "")
        self.table.value = (f"<p><b>Runs of this session</b></p>{table(rows[0], [r.values() for r in rows], 'a1-runs')}"
                            + note) if rows else ""

    def widget(self) -> w.Widget:
        """The whole interface: controls, buttons and progress, curves, templates, the table of runs."""
        controls = w.HBox([w.VBox([w.HBox([self.regularize, self.lam]), self.eta, self.n_batch, self.n_epochs]),
                           w.VBox([self.loss, self.flip, self.schedule, self.seed])],
                          layout={"flex_flow": "row wrap"})  # in a narrow window the second column goes below
        buttons = w.HBox([self.train_button, self.stop_button, self.progress, self.show_test])
        return w.VBox([controls, buttons, self.status, self.curves, self.templates, self.table])

    def _repr_mimebundle_(self, **kwargs):
        return self.widget()._repr_mimebundle_(**kwargs)

    def snapshot(self):
        """The curves, templates and table as they are now, as static HTML: what a notebook run without a
        browser (papermill) or an exported notebook shows, since widgets live only in a running kernel."""
        from IPython.display import HTML

        images = "".join(f'<img src="data:image/png;base64,{base64.b64encode(img.value).decode()}" '
                         f'style="width:100%;max-width:52em">' for img in (self.curves, self.templates) if img.value)
        return HTML(f"<p>{self.status.value}</p>{images}{self.table.value}")

