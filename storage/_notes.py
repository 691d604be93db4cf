"""Study management beyond create/delete: renaming, free-text notes on studies and trials, and
the bulk read of a study's trials that the UI's snapshot is built from."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, exc, select, update

from storage._base import StorageBase, row_record
from storage.errors import StorageError
from storage.models import Architecture, Note, Study, Trial, utcnow
from storage.records import TrialRecord

# An architecture's columns, labelled as storage._base.row_record reads them.
_ARCH = (Architecture.id.label("arch_id"), Architecture.hash.label("arch_hash"),
         Architecture.text.label("arch_text"), Architecture.decisions.label("arch_decisions"),
         Architecture.space.label("arch_space"))


class _Row:
    """A trial row joined with its architecture in Python (row_record reads ``_mapping``)."""

    __slots__ = ("_mapping",)

    def __init__(self, mapping: dict[str, Any]):
        self._mapping = mapping


class NotesMixin(StorageBase):
    """Rename studies, keep notes, read every trial of a study at once."""

    def rename_study(self, name: str, new_name: str) -> None:
        """Rename a study (its trials, notes and artifacts follow); ConflictError if taken.

        >>> from storage import Storage
        >>> st = Storage("sqlite://")
        >>> _ = st.create_study("a", space="s", task="t", searcher="random", config={}, seed=0,
        ...                     objectives=[{"name": "acc", "direction": "maximize"}])
        >>> st.rename_study("a", "b"); [s.name for s in st.list_studies()]
        ['b']
        """
        if not isinstance(new_name, str) or not new_name.strip():
            raise StorageError(f"invalid study name {new_name!r}: expected a non-empty string")
        try:
            with self._write() as s:
                study_id = self._study_id(s, name)
                if s.scalar(select(Study.id).where(Study.name == new_name)) is not None:
                    raise self._taken(new_name)  # type: ignore[attr-defined]
                s.execute(update(Study).where(Study.id == study_id)
                          .values(name=new_name, updated_at=utcnow()))
        except exc.IntegrityError:  # taken concurrently by another process
            raise self._taken(new_name) from None  # type: ignore[attr-defined]
        self._forget_study(name)

    def set_note(self, study: str, text: str, trial: int | None = None) -> None:
        """Set the note of a study (``trial=None``) or of one of its trials; blank deletes it.

        >>> from storage import Storage
        >>> st = Storage("sqlite://")
        >>> _ = st.create_study("a", space="s", task="t", searcher="random", config={}, seed=0,
        ...                     objectives=[{"name": "acc", "direction": "maximize"}])
        >>> st.set_note("a", "baseline run"); st.set_note("a", "odd", trial=3)
        >>> st.notes("a")
        {None: 'baseline run', 3: 'odd'}
        """
        text = str(text or "").strip()
        with self._write() as s:
            study_id = self._study_id(s, study)
            match = (Note.study_id == study_id) & (
                Note.trial_number.is_(None) if trial is None else Note.trial_number == int(trial))
            s.execute(delete(Note).where(match))
            if text:
                s.add(Note(study_id=study_id, trial_number=None if trial is None else int(trial),
                           text=text, updated_at=utcnow()))

    def notes(self, study: str) -> dict[int | None, str]:
        """The study's notes: ``None`` -> the study's own, trial number -> that trial's."""
        with self._read() as s:
            study_id = self._study_id(s, study)
            return {n: t for n, t in s.execute(select(Note.trial_number, Note.text)
                                               .where(Note.study_id == study_id)
                                               .order_by(Note.id))}

    def study_notes(self) -> dict[str, str]:
        """Every study's own note, by study name, in one query (the Studies table's column).

        >>> from storage import Storage
        >>> st = Storage("sqlite://")
        >>> for name in ("a", "b"):
        ...     _ = st.create_study(name, space="s", task="t", searcher="random", config={},
        ...                         seed=0, objectives=[{"name": "acc", "direction": "maximize"}])
        >>> st.set_note("b", "baseline run"); st.set_note("a", "t0", trial=0)
        >>> st.study_notes()
        {'b': 'baseline run'}
        """
        with self._read() as s:
            rows = s.execute(select(Study.name, Note.text).join(Note, Note.study_id == Study.id)
                             .where(Note.trial_number.is_(None)).order_by(Note.id))
            return {name: text for name, text in rows}

    def trials_from(self, study: str, number: int = 0) -> list[TrialRecord]:
        """Every trial numbered ``number`` or above, in number order, without curves.

        Two Core queries, the trials and then their distinct architectures (a study's trials
        share few architectures, and decoding each one's decisions once instead of once per
        trial is most of the cost): about five times faster than :meth:`trials` for a whole
        study. What a reader that keeps the finished trials it already has asks for on each
        change.
        """
        with self._connect() as c:
            study_id = self._study_id(c, study)
            rows = c.execute(select(*Trial.__table__.c)
                             .where(Trial.study_id == study_id, Trial.number >= int(number))
                             .order_by(Trial.number)).all()
            ids = sorted({r.architecture_id for r in rows})
            archs = {}
            for chunk in range(0, len(ids), 900):  # SQLite's limit on bound parameters
                for a in c.execute(select(*_ARCH).where(
                        Architecture.id.in_(ids[chunk:chunk + 900]))):
                    archs[a.arch_id] = a._mapping
        return [row_record(_Row({**r._mapping, **archs[r.architecture_id]}), study)
                for r in rows]

    def _delete_notes(self, s: Any, study_id: int) -> None:
        s.execute(delete(Note).where(Note.study_id == study_id))
