"""The live model: loaded once, swapped atomically, never half-loaded.

A request takes a reference to the live ``(version, matcher)`` pair at its start and keeps
using it; publishing or activating a version loads and verifies the new model fully first
and then replaces the reference in one assignment, so no request is dropped or sees a mix.

The models root's ``CURRENT`` file is the one pointer to the live version that every
process of the service shares (it is replaced atomically). Each process watches it
(:meth:`ModelHost.watch`, every ``IEI_MATCH_MODEL_POLL_S`` seconds) and follows a publish
or an activation made by another process: it loads the version ``CURRENT`` names and swaps
it in between two requests, as for its own publish. A first model is made live only if no
other process made one live first (:func:`~iei_match.artifacts.activate_first`); a process
that loses that race serves the winner's model.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from iei_match.artifacts import (
    activate_first,
    activate_version,
    current_version,
    list_versions,
    load_model,
    publish_model,
    remove_stale_publishing,
    resolve_model_dir,
)
from iei_match.errors import (
    IeiMatchError,
    ModelCompatibilityError,
    ModelIntegrityError,
    ModelNotFoundError,
)
from iei_match.matcher import Matcher

from .errors import Unavailable

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: the first-model race decides alone
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("iei_match_service.models")


@dataclass(frozen=True)
class LiveModel:
    """A loaded model version, ready to explain (its TreeSHAP tables are built when it is
    loaded, not by the first request: 0.1-0.5 s)."""

    version: str
    matcher: Matcher

    def __post_init__(self) -> None:
        self.matcher.prepare_explanations()


class ModelHost:
    """Holds the live model of a models root."""

    def __init__(self, root: Path, warm: Callable[[LiveModel], None] | None = None):
        self.root = Path(root)
        # Called with a model replacing the live one, before it is made live (the service
        # prepares its catalogs for it), so that no request waits for that after a swap.
        self.warm = warm
        self._live: LiveModel | None = None
        self._swap = threading.Lock()
        self.last_error: str | None = None
        # Set while a start serves another version than the one CURRENT names (refused).
        self.fallback_from: str | None = None
        self._refused: str | None = None  # the name in CURRENT last refused, not retried
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        for name in remove_stale_publishing(self.root):
            log.warning("removed %s, left by a publish that was stopped", name)

    @property
    def ready(self) -> bool:
        return self._live is not None

    def live(self) -> LiveModel:
        live = self._live
        if live is None:
            raise Unavailable("the model is not loaded yet (first start trains it; see "
                              "/readyz)", code="model_unavailable")
        return live

    def load_current(self) -> LiveModel | None:
        """Load the version ``CURRENT`` names; keep serving the old one if that fails.

        At a start (nothing live yet), a version that ``CURRENT`` names but that is refused
        (damaged, tampered with, missing) gives way to the newest other published version
        that loads; the refusal is logged and ``CURRENT`` is left as it is. Only a models
        root without ``CURRENT`` has no model yet.
        """
        fallback_from = None
        self._refused = None
        try:
            path = resolve_model_dir(self.root)
            live = LiveModel(path.name, load_model(path))
        except IeiMatchError as exc:
            self.last_error = str(exc)
            if isinstance(exc, ModelNotFoundError) and not (self.root / "CURRENT").is_file():
                return None
            if self._live is not None:
                log.error("model refused, keeping the previous one: %s", exc)
                return None
            log.error("model refused: %s", exc)
            self._refused = current_version(self.root)
            live = self._fallback()
            if live is None:
                return None
            fallback_from = (self.root / "CURRENT").read_text(
                encoding="utf-8", errors="replace").strip()[:100]
            self._refused = current_version(self.root)
        with self._swap:
            self._live = live
            self.fallback_from = fallback_from
        self.last_error = None
        return live

    def _fallback(self) -> LiveModel | None:
        named = (self.root / "CURRENT").read_text(encoding="utf-8", errors="replace").strip()
        for v in reversed(list_versions(self.root)):
            if v["version"] == named:
                continue
            try:
                live = LiveModel(v["version"], load_model(self.root / v["version"]))
            except IeiMatchError as exc:
                log.error("model refused: %s", exc)
                continue
            log.error("the version CURRENT names (%r) was refused; serving %s, the newest "
                      "published version that loads", named[:100], live.version)
            return live
        return None

    @contextlib.contextmanager
    def first_training_turn(self) -> Iterator[None]:
        """Held while this process trains the first model: the processes that share this
        models root on one machine (the workers of one ``serve``) wait for each other, so
        that one trains and the others serve what it publishes (:meth:`follow`) instead of
        training the same model at once. A lock file, released by the system if the
        process dies; elsewhere (another machine, no ``fcntl``) :meth:`publish`'s ``first``
        still makes one model live."""
        if fcntl is None:  # pragma: no cover
            yield
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".first-model.lock", "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def publish(self, matcher: Matcher, metrics: dict, data_sha256: str, *,
                first: bool = False) -> LiveModel:
        """Publish ``matcher`` as a new version, verify it by loading it back, make it live.

        With ``first``, it is made live only if no version is live yet; when another
        process made one live meanwhile, that one is loaded and served instead (and the new
        version stays published, not live).
        """
        with self._swap:
            path = publish_model(matcher, self.root, metrics=metrics, data_sha256=data_sha256,
                                 activate=False)
            live = LiveModel(path.name, load_model(path))
            if first:
                winner = activate_first(self.root, path.name)
                if winner != path.name:
                    log.info("another process published the first model (%s) before this "
                             "one (%s): serving %s", winner, path.name, winner)
                    if self._live is not None and self._live.version == winner:
                        return self._live
                    try:
                        live = LiveModel(winner, load_model(resolve_model_dir(self.root)))
                    except IeiMatchError as exc:  # CURRENT names what cannot be served
                        log.error("the live version is refused (%s); making %s live", exc,
                                  path.name)
                        activate_version(self.root, path.name)
            else:
                self._warmed(live)
                activate_version(self.root, path.name)
            self._live, self.fallback_from, self._refused = live, None, None
        return live

    def follow(self) -> bool:
        """Serve the version ``CURRENT`` names if it is not the live one (another process
        published or activated it); returns whether the live model changed.

        A version that is refused is logged once and not tried again until ``CURRENT``
        changes; the live model stays.
        """
        named = current_version(self.root)
        live = self._live
        if named is None or named == self._refused or self._swap.locked():
            return False  # nothing to follow, or a publish of this process is under way
        if live is not None and named == live.version:
            return False
        if live is None:
            return self.load_current() is not None
        try:
            path = resolve_model_dir(self.root)
            new = self._warmed(LiveModel(path.name, load_model(path)))
        except IeiMatchError as exc:
            self._refused, self.last_error = named, str(exc)
            log.error("model %r refused, keeping %s: %s", named[:100], live.version, exc)
            return False
        with self._swap:
            if current_version(self.root) != new.version or (
                    self._live is not None and self._live.version == new.version):
                return False  # changed again meanwhile: the next look follows
            self._live, self.fallback_from, self.last_error = new, None, None
        log.info("serving %s, made live by another process (was %s)", new.version,
                 live.version)
        return True

    def watch(self, interval: float) -> None:
        """Follow ``CURRENT`` every ``interval`` seconds in a background thread until
        :meth:`close`."""
        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.follow()
                except Exception:  # never let the watcher die; the next look retries
                    log.exception("following the live model failed")

        self._watcher = threading.Thread(target=loop, name="iei-model-watch", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(10)

    def activate(self, version: str) -> LiveModel:
        """Roll back (or forward) to a published version, after verifying it."""
        with self._swap:
            if Path(version).name != version:
                raise ModelNotFoundError(f"no version {version!r}")
            try:
                live = self._warmed(LiveModel(version, load_model(self.root / version)))
            except (ModelIntegrityError, ModelCompatibilityError) as exc:
                log.error("version %s refused, keeping the live one: %s", version, exc)
                # The client hears what is wrong, not where the models are kept.
                why = str(exc).replace(str(self.root) + os.sep, "")
                raise type(exc)(f"version {version!r} is refused: {why}") from None
            activate_version(self.root, version)
            self._live, self.fallback_from, self._refused = live, None, None
        return live

    def _warmed(self, live: LiveModel) -> LiveModel:
        """``live`` after :attr:`warm` (whose failure is logged: the first requests then
        prepare what it did not)."""
        if self.warm is not None and self._live is not None:
            try:
                self.warm(live)
            except Exception:
                log.exception("warming %s failed", live.version)
        return live

    def versions(self) -> list[dict]:
        live = self._live
        out = list_versions(self.root)
        for v in out:
            v["live"] = live is not None and v["version"] == live.version
        return out
