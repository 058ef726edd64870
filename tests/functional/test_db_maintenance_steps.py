"""The maintenance steps against a real PostgreSQL seeded with the runbook book's tables.

Given the seed (dead tuples, unused and bloated indexes), when a step's handler runs, then the database and the
step's result say exactly what was done. Tests in this module share one seeded database and run in order.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from functions.core import clock
from functions.core.errors import ConfigurationError, InvalidInput
from functions.handlers import (
    db_analyze,
    db_check_database,
    db_reindex,
    db_report_unused_indexes,
    db_start_maintenance,
    db_vacuum_tables,
)

pytestmark = pytest.mark.postgres


def dsn(db, app="test-observer"):
    return f"host={db.host} port={db.port} dbname={db.dbname} user=postgres application_name={app}"


def start_state(lambda_context, dry_run=False):
    return db_start_maintenance.lambda_handler({"dry_run": dry_run}, lambda_context)["details"]


def test_vacuum_measurably_removes_the_dead_tuples(seeded_database, use_db_settings, lambda_context):
    use_db_settings(seeded_database, tables=["sales", "public.transactions"])
    with psycopg.connect(dsn(seeded_database), autocommit=True) as conn:
        (dead_before,) = conn.execute("SELECT dead_tuple_count FROM pgstattuple('sales')").fetchone() or (
            None,
        )

    result = db_vacuum_tables.lambda_handler(start_state(lambda_context), lambda_context)

    with psycopg.connect(dsn(seeded_database), autocommit=True) as conn:
        (dead_after,) = conn.execute("SELECT dead_tuple_count FROM pgstattuple('sales')").fetchone() or (
            None,
        )
    sales = next(row for row in result["details"]["tables"] if row["table"] == "public.sales")
    assert dead_before > 1000
    assert dead_after == 0
    assert result["status"] == "CHANGED"
    assert sales["outcome"] == "vacuumed"
    assert sales["dead_before"] > 1000 and sales["dead_after"] == 0
    assert result["details"]["statements"] == [
        'VACUUM (ANALYZE) "public"."sales"',
        'VACUUM (ANALYZE) "public"."transactions"',
    ]


def test_a_missing_table_is_reported_and_the_others_vacuumed(
    seeded_database, use_db_settings, lambda_context
):
    use_db_settings(seeded_database, tables=["no_such_table", "customers"])

    result = db_vacuum_tables.lambda_handler(start_state(lambda_context), lambda_context)

    assert result["status"] == "CHANGED"
    assert result["details"]["findings"] == ["table no_such_table does not exist: not vacuumed"]
    assert [row["outcome"] for row in result["details"]["tables"]] == ["missing", "vacuumed"]


def test_a_table_name_with_sql_metacharacters_is_refused_with_nothing_run(
    seeded_database, use_db_settings, lambda_context, monkeypatch
):
    from functions.core import config

    with pytest.raises(ConfigurationError, match="not a plain"):
        use_db_settings(seeded_database, tables=["products; DROP TABLE sales"])
    # The same name reaching the step by another road (a configuration not validated) is refused too.
    settings = use_db_settings(seeded_database, tables=["products"])
    hostile = settings.maintenance.model_construct(
        **{**settings.maintenance.__dict__, "tables": ['products"; DROP TABLE sales; --']}
    )
    monkeypatch.setattr(config, "get_settings", lambda: settings.model_copy(update={"maintenance": hostile}))
    monkeypatch.setattr("functions.handlers.db_common.get_settings", config.get_settings)

    with pytest.raises(InvalidInput, match="nothing was run"):
        db_vacuum_tables.lambda_handler(start_state(lambda_context), lambda_context)

    with psycopg.connect(dsn(seeded_database), autocommit=True) as conn:
        products = conn.execute(
            "SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'products'"
        ).fetchone()
        sales = conn.execute("SELECT to_regclass('sales') IS NOT NULL").fetchone()
    assert products == (0,)
    assert sales == (True,)


def test_an_unused_index_is_reported_and_a_primary_key_is_not(
    seeded_database, use_db_settings, lambda_context
):
    use_db_settings(seeded_database)

    result = db_report_unused_indexes.lambda_handler(start_state(lambda_context), lambda_context)

    names = {row["index"] for row in result["details"]["indexes"]}
    assert result["status"] == "DEGRADED"
    assert {"idx_customers_region", "idx_products_stock"} <= names
    assert not names & {"transactions_pkey", "customers_email_key", "products_sku_key"}
    assert "idx_transactions_sale" not in names  # scanned by the seed's reads
    assert all(row["bytes"] > 0 for row in result["details"]["indexes"])
    assert "statistics never reset" in result["summary"]


def test_analyze_updates_statistics_and_summarizes_its_output(
    seeded_database, use_db_settings, lambda_context
):
    use_db_settings(seeded_database)

    result = db_analyze.lambda_handler(start_state(lambda_context), lambda_context)

    with psycopg.connect(dsn(seeded_database), autocommit=True) as conn:
        analyzed = conn.execute(
            "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'products'"
        ).fetchone()
    assert result["status"] == "CHANGED"
    assert result["details"]["relations_analyzed"] >= 4
    assert "public.sales" in {row["table"] for row in result["details"]["largest"]}
    assert analyzed == (True,)


def test_dry_run_lists_the_statements_and_changes_nothing(seeded_database, use_db_settings, lambda_context):
    use_db_settings(seeded_database, tables=["sales"], reindex=["public.idx_sales_customer"])
    state = start_state(lambda_context, dry_run=True)
    with psycopg.connect(dsn(seeded_database), autocommit=True) as conn:
        counts_before = conn.execute(
            "SELECT sum(vacuum_count + analyze_count) FROM pg_stat_user_tables"
        ).fetchone()

    vacuum = db_vacuum_tables.lambda_handler(state, lambda_context)
    reindex = db_reindex.lambda_handler(state, lambda_context)
    analyze = db_analyze.lambda_handler(state, lambda_context)

    with psycopg.connect(dsn(seeded_database), autocommit=True) as conn:
        counts_after = conn.execute(
            "SELECT sum(vacuum_count + analyze_count) FROM pg_stat_user_tables"
        ).fetchone()
    assert [vacuum["status"], reindex["status"], analyze["status"]] == ["DRY_RUN"] * 3
    assert vacuum["details"]["statements"] == ['VACUUM (ANALYZE) "public"."sales"']
    assert 'REINDEX INDEX CONCURRENTLY "public"."idx_sales_customer"' in reindex["details"]["statements"]
    assert analyze["details"]["statements"] == ["ANALYZE VERBOSE"]
    assert counts_after == counts_before


def test_reindex_drops_an_interrupted_reindex_leftover_and_rebuilds_the_bloated_index(
    seeded_database, use_db_settings, lambda_context
):
    use_db_settings(seeded_database, tables=["sales"])
    # A REINDEX CONCURRENTLY interrupted after it created its copy: it waits for an open writer, and times out.
    with (
        psycopg.connect(dsn(seeded_database)) as writer,
        psycopg.connect(dsn(seeded_database), autocommit=True) as dba,
    ):
        writer.execute("INSERT INTO products (sku, name, price_cents, stock) VALUES ('SKU-X', 'x', 1, 1)")
        dba.execute("SET statement_timeout = '500ms'")
        with pytest.raises(psycopg.errors.QueryCanceled):
            dba.execute("REINDEX INDEX CONCURRENTLY idx_products_stock")
        writer.rollback()
        leftover = dba.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE NOT i.indisvalid"
        ).fetchall()
    assert leftover == [("idx_products_stock_ccnew",)]

    result = db_reindex.lambda_handler(start_state(lambda_context), lambda_context)

    with psycopg.connect(dsn(seeded_database), autocommit=True) as conn:
        invalid = conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone()
    indexes = {row["index"]: row for row in result["details"]["indexes"]}
    assert result["status"] == "CHANGED"
    assert [(r["index"], r.get("outcome")) for r in result["details"]["leftovers"]] == [
        ("idx_products_stock_ccnew", "dropped")
    ]
    assert invalid == (0,)
    assert indexes["idx_sales_date"]["outcome"] == "rebuilt"
    assert indexes["idx_sales_date"]["reason"].startswith("bloated")
    assert indexes["idx_sales_date"]["bytes_after"] < indexes["idx_sales_date"]["bytes_before"]


def test_pre_checks_pass_on_a_quiet_database_without_replicas(
    seeded_database, use_db_settings, lambda_context
):
    use_db_settings(seeded_database)

    result = db_check_database.lambda_handler(start_state(lambda_context), lambda_context)

    assert result["status"] == "OK"
    assert seeded_database.dbname in {row["name"] for row in result["details"]["sizes"]}
    assert result["details"]["replicas"] == []


def test_pre_checks_abort_when_an_expected_replica_is_missing_or_the_database_is_busy(
    seeded_database, use_db_settings, lambda_context
):
    db = seeded_database.model_copy(update={"expected_replicas": ["replica-1"]})
    use_db_settings(db, max_long_queries=0, long_query_seconds=1)
    with psycopg.connect(dsn(seeded_database, "report-job")) as busy:
        busy.execute("SELECT 1")  # an open transaction: not a running query
        with psycopg.connect(dsn(seeded_database, "report-job"), autocommit=True) as runner:
            pid = runner.info.backend_pid
            import threading

            worker = threading.Thread(target=lambda: runner.execute("SELECT pg_sleep(3)"))
            worker.start()
            clock.set_clock(
                lambda: clock.time.time() + 60
            )  # the running query is a minute old by the step's clock
            try:
                result = db_check_database.lambda_handler(start_state(lambda_context), lambda_context)
            finally:
                clock.reset_clock()
                worker.join()

    assert result["status"] == "FAILED"
    assert "expected replica replica-1 is not connected" in result["details"]["findings"]
    assert any(f"pids {pid}" in finding for finding in result["details"]["findings"])
    assert result["details"]["busy"] is True


def test_steps_past_the_window_are_skipped_and_say_so(
    seeded_database, use_db_settings, lambda_context, pinned_clock
):
    use_db_settings(seeded_database)
    state = start_state(lambda_context)
    deadline = clock.parse_iso(state["window"]["deadline"])
    pinned_clock(deadline + timedelta(seconds=1))

    results = [h.lambda_handler(state, lambda_context) for h in (db_analyze, db_vacuum_tables, db_reindex)]

    assert [r["status"] for r in results] == ["SKIPPED"] * 3
    assert all("past the window's end" in r["summary"] for r in results)
