"""Identity-graph invariants under random record sequences (hypothesis)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from flywheel.identity import service as identity
from flywheel.identity.models import Identity
from flywheel.migrations import upgrade
from flywheel.projects import service as projects
from flywheel.projects.schemas import ProjectIn
from flywheel.store import Database, create_database

LOGIN = "$identity_login_id"
KEYS = [LOGIN, "fund_account", "$identity_mobile", "$identity_anonymous_id", "cash_account"]
_projects = itertools.count()


@pytest.fixture(scope="module")
def graph_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    db = create_database(f"sqlite:///{tmp_path_factory.mktemp('graph') / 'graph.db'}")
    upgrade(db.engine)
    yield db
    db.dispose()


identity_sets = st.dictionaries(
    st.sampled_from(KEYS), st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=4
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("resolve"), identity_sets),
        st.tuples(st.just("unbind"), st.tuples(st.sampled_from(KEYS), st.sampled_from("abcd"))),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations, st.integers(1, 3))
def test_rules_hold_after_any_sequence(
    graph_db: Database, ops: list[tuple[str, object]], batches: int
) -> None:
    db = graph_db
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with db.unit_of_work() as session:
        project_id = projects.create(
            session=session, project_in=ProjectIn(name=f"p{next(_projects)}")
        ).id
    rules = {r.key: r for r in identity.DEFAULT_RULES}
    size = max(1, len(ops) // batches)
    for start in range(0, len(ops), size):
        with db.unit_of_work() as session:
            graph = identity.IdentityGraph(
                session=session, project_id=project_id, rules=rules, now=now
            )
            for kind, payload in ops[start : start + size]:
                if kind == "resolve":
                    assert isinstance(payload, dict)
                    usable = graph.usable(payload)
                    user = graph.resolve(usable, event_id=None)
                    # the strongest identity always ends up with the user the record went to
                    assert graph.owner[usable[0]] == user
                else:
                    assert isinstance(payload, tuple)
                    graph.unbind(*payload)
            graph.flush()
    with db.unit_of_work() as session:
        rows = session.execute(
            select(Identity.key, Identity.value, Identity.user_id).where(
                Identity.project_id == project_id
            )
        ).all()
    per_user_key = Counter((user, key) for key, _, user in rows)
    for (_, key), n in per_user_key.items():
        rule = rules[key]
        assert n <= rule.value_limit, (key, n)
        if not rule.multi:
            assert n == 1
    assert len({(k, v) for k, v, _ in rows}) == len(rows)
    if ops[-1][0] == "resolve":  # its strongest identity is bound, whatever came before
        assert rows
