"""The public surface is small and deliberate: pinned here against the documented names."""

from __future__ import annotations

import gridspec as gs
from gridspec import errors

DOCUMENTED = {
    "grid", "train_data", "val_data", "sample",
    "SearchResult", "Trial", "TrialStatus",
    "GridSpecError", "GridError", "LookupFailed", "DataError", "JournalError", "SearchError",
    "SearchInterrupted",
}


def test_all_is_the_documented_surface():
    assert set(gs.__all__) == DOCUMENTED
    for name in gs.__all__:
        assert getattr(gs, name) is not None


def test_exception_tree_subclasses_the_fitting_builtins():
    assert issubclass(errors.GridSpecError, ValueError)
    assert issubclass(errors.GridError, TypeError) and issubclass(errors.GridError, errors.GridSpecError)
    assert issubclass(errors.LookupFailed, LookupError)
    assert issubclass(errors.SearchError, errors.GridSpecError)
    assert errors.GridSpecError.exit_code == 2 and errors.SearchError.exit_code == 1


def test_factory_decorators_leave_an_ordinary_callable():
    @gs.train_data
    def a():
        return 1

    @gs.val_data(name="small")
    def b():
        return 2

    assert a() == 1 and b() == 2
    assert a.__gridspec_factory__.label == "a (train_data)"
    assert b.__gridspec_factory__.label == "small (val_data)"
