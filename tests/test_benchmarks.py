"""The benchmark script the README documents still starts, and judges the
targets right (its timings are measured by running it, not in the tests)."""

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from benchmarks import run as benchmark

from .helpers import ROOT
from .servers import engine


def test_benchmark_script_starts() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--quick" in result.stdout


def results(rollback_at_50: float, create_all_at_10: float, upgrade: float) -> dict:
    rows = [
        {
            "models": models,
            "tests": 20,
            "rollback_ms": 1.0,
            "create_all_ms": 2.0,
            "rollback_suite_s": 1.0,
            "create_all_suite_s": 1.0,
        }
        for models in benchmark.MODEL_COUNTS
    ]
    rows[1]["create_all_ms"] = create_all_at_10
    rows[2]["rollback_ms"] = rollback_at_50
    return {
        "copy": {"median": 0.5, "min": 0.5, "max": 0.5},
        "first_green": {"median": 5.0},
        "isolation": rows,
        "upgrade": {
            "create_app_s": 1.0,
            "upgrade_s": upgrade,
            "interpreter_s": 0.01,
            "generated_suite_s": 2.0,
        },
        "template_suite": 200.0,
    }


def test_report_marks_each_target_met_or_not() -> None:
    args = argparse.Namespace(quick=True, runs=1)
    good = benchmark.report(results(1.4, 6.0, 1.2), args)
    bad = benchmark.report(results(1.6, 4.0, 1.4), args)
    assert good.count("| yes |") == 4
    assert bad.count("| no |") == 3
    assert "| 1.40 x | yes |" in good and "| 1.60 x | no |" in bad


def test_traffic_benchmark_starts_and_its_section_survives_a_full_run(
    tmp_path,
) -> None:
    """benchmarks/traffic.py replaces only its own section of BENCHMARKS.md,
    and benchmarks/run.py, which rewrites the file, keeps it."""
    from benchmarks import traffic

    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "traffic.py"), "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--rows" in result.stdout
    section = f"{traffic.SECTION}\n\n| old |\n"
    newer = section.replace("old", "new")
    document = "# Benchmarks\n\n## Other\n\ntext\n"
    once = traffic.replace_section(document, section)
    assert once == document + "\n" + section
    again = traffic.replace_section(once, newer)
    assert again.count(traffic.SECTION) == 1
    assert "| new |" in again and "| old |" not in again
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(again + "\n## Later\n\nmore\n")
    assert traffic.kept_section(path) == newer


def test_rolling_deploy_benchmark_starts_and_its_section_survives_a_full_run(
    tmp_path,
) -> None:
    """benchmarks/rolling_deploy.py replaces only its own section of
    BENCHMARKS.md, and benchmarks/run.py, which rewrites the file, keeps it."""
    from benchmarks import rolling_deploy

    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "rolling_deploy.py"), "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--engines" in result.stdout and "--phase" in result.stdout
    assert "--migration-cpu" in result.stdout
    section = f"{rolling_deploy.SECTION}\n\n| old |\n"
    newer = section.replace("old", "new")
    document = "# Benchmarks\n\n## Other\n\ntext\n"
    once = rolling_deploy.replace_section(document, section)
    assert once == document + "\n" + section
    again = rolling_deploy.replace_section(once + "\n## Later\n\nmore\n", newer)
    assert again.count(rolling_deploy.SECTION) == 1
    assert "| new |" in again and "| old |" not in again and "## Later" in again
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(again)
    assert rolling_deploy.kept_section(path) == newer


def test_rolling_deploy_report_says_how_the_commands_got_the_cpu() -> None:
    """--migration-cpu idle (the default) runs `flask db upgrade` under
    SCHED_IDLE, nice at niceness 19, and the report's header names the option
    and what it emulates; shared runs the command as the serving processes and
    says it competes with them."""
    from benchmarks import rolling_deploy

    step = "R0 -> R1"
    rows = [
        {
            "step": step,
            "phase": phase,
            "seconds": 6.0,
            "requests": 600,
            "failed": 0,
            "stale": 0,
            "p50_ms": 10.0,
            "p99_ms": {"before": 20.0, "control": 30.0, "migration": 50.0}.get(
                phase, 20.0
            ),
            "max_ms": 60.0,
            "lock_waits": 1 if phase == "migration" else 0,
            "longest_wait_ms": 40.0 if phase == "migration" else 0.0,
            "waits": ["40 ms: UPDATE users -- waits for 7 (active): ALTER"]
            if phase == "migration"
            else [],
            "autovacuum": ["autovacuum: VACUUM public.users (0.4 s)"]
            if phase in ("control", "after")
            else [],
            "cpu": 0.5,
            "details": [],
        }
        for phase in rolling_deploy.PHASES
    ]
    results = {"postgresql": {"server": "15", "rows": rows, "written": 1, "lost": 0}}

    def section(cpu: str, start_cpu: str) -> str:
        args = argparse.Namespace(
            rows=10,
            threads=1,
            rate=10.0,
            phase=10.0,
            workers=1,
            batch=5,
            migration_cpu=cpu,
            start_cpu=start_cpu,
            repeat=2,
            backfill_pause=1.0,
            probe={"alone": 2.5, "every core": 6.25, "one core": 2.75},
        )
        return rolling_deploy.report(results, args, "0.5")

    results["postgresql"]["runs"] = [[2.5], [1.25]]
    idle = section("idle", "idle")
    assert "--repeat 2 --backfill-pause 1`" in idle
    assert "run 1: 2.50x; run 2: 1.25x; the median: 1.88x." in idle
    assert "| 1 (40 ms) | 50% |" in idle
    assert "- `R0 -> R1 migration: 40 ms: UPDATE users -- waits for 7" in idle
    assert "--migration-cpu idle " in idle and "SCHED_IDLE" in idle
    assert "p99 2.5 ms alone, 6.2 ms beside a busy loop" in idle
    assert "and 2.8 ms beside the same loops on one core" in idle
    assert "pods of their own" in idle and "(then as the serving processes" in idle
    assert "R0 -> R1 2.50x" in idle and "control / before: 1.50x" in idle
    assert "what the migration adds to starting the command: 1.67x" in idle
    assert "NOT met (worst 2.50x" in idle
    assert "- `R0 -> R1 control: autovacuum: VACUUM public.users (0.4 s)`" in idle
    assert "R0 -> R1 after: autovacuum" not in idle
    niced = section("nice", "nice")
    assert "--migration-cpu nice " in niced and "CPU niceness 19" in niced
    assert "SCHED_IDLE" not in niced and "pods of their own" in niced
    assert "needs root" in section("idle", "shared")
    plain = section("shared", "shared")
    assert "--migration-cpu shared " in plain and "pods of their own" not in plain
    assert "as the serving processes (--migration-cpu shared)" in plain
    last = str(max(os.sched_getaffinity(0)))
    assert rolling_deploy.lowered(["flask", "db", "upgrade"], "idle") == [
        *("taskset", "-c", last, "chrt", "--idle", "0"),
        *("flask", "db", "upgrade"),
    ]
    assert rolling_deploy.lowered(["flask"], "nice") == ["nice", "-n", "19", "flask"]
    assert rolling_deploy.lowered(["flask"], "shared") == ["flask"]


def test_rolling_deploy_load_generator_does_not_pause_to_collect_garbage() -> None:
    """During a deploy the load generator's cyclic collector is off (a full
    collection stopped its threads for 25-60 ms, counted as the servers'
    latency), and afterwards it is back on, with the cycles made meanwhile
    collected."""
    import gc
    import weakref

    from benchmarks import rolling_deploy

    class Node:
        pass

    assert gc.isenabled()
    with rolling_deploy.no_collector_pauses():
        assert not gc.isenabled()
        cycle = Node()
        cycle.self = cycle  # type: ignore[attr-defined]
        alive = weakref.ref(cycle)
        del cycle
        # Enough new containers to trigger the collector if it were on.
        kept = [[] for _ in range(100_000)]
        assert alive() is not None
        del kept
    assert gc.isenabled()
    assert alive() is None


def test_rolling_deploy_cpu_probe_measures_each_placement_and_stops_its_loops() -> None:
    """The probe behind --migration-cpu idle measures a CPU task's p99 alone,
    beside busy loops on every core and on one, and kills its loops."""
    from benchmarks import rolling_deploy

    before = {p.name for p in Path("/proc").iterdir() if p.name.isdigit()}
    probe = rolling_deploy.cpu_probe(samples=20)
    assert set(probe) == {"alone", "every core", "one core"}
    assert all(ms > 0 for ms in probe.values())
    left = {p.name for p in Path("/proc").iterdir() if p.name.isdigit()} - before
    assert not [
        pid
        for pid in left
        if "while True: pass" in Path(f"/proc/{pid}/cmdline").read_bytes().decode()
    ]


@pytest.mark.parametrize("cpu", ["idle", "nice"])
def test_rolling_deploy_gives_a_started_release_normal_scheduling_back(
    cpu: str,
) -> None:
    """A release's gunicorn starts lowered (one core under SCHED_IDLE, or
    niceness 19) in a group of its own; once it serves, restore() gives every
    thread of the group SCHED_OTHER at niceness 0 on every core back, and leaves
    other processes as they are."""
    from benchmarks import rolling_deploy

    if not rolling_deploy.can_restore():
        pytest.fail("restoring normal scheduling needs root, as CI runs")
    script = (
        "import threading, time;"
        " threading.Thread(target=time.sleep, args=(60,)).start(); time.sleep(60)"
    )
    group, other = (
        subprocess.Popen(
            rolling_deploy.lowered([sys.executable, "-c", script], cpu),
            process_group=0,
        )
        for _ in range(2)
    )
    cores = frozenset(os.sched_getaffinity(0))
    lowered = (
        (os.SCHED_IDLE, 0, frozenset({max(cores)}))
        if cpu == "idle"
        else (os.SCHED_OTHER, 19, cores)
    )
    try:

        def scheduling(pid: int) -> set[tuple[int, int, frozenset[int]]]:
            """Each thread's policy, niceness and cores."""
            tids = [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
            return {
                (
                    os.sched_getscheduler(tid),
                    os.getpriority(os.PRIO_PROCESS, tid),
                    frozenset(os.sched_getaffinity(tid)),
                )
                for tid in tids
            }

        for process in (group, other):
            deadline = time.monotonic() + 30
            while len(list(Path(f"/proc/{process.pid}/task").iterdir())) < 2:
                assert time.monotonic() < deadline, "the thread did not start"
                time.sleep(0.05)
        assert scheduling(group.pid) == {lowered}
        rolling_deploy.restore(group.pid)
        assert scheduling(group.pid) == {(os.SCHED_OTHER, 0, cores)}
        assert scheduling(other.pid) == {lowered}
    finally:
        for process in (group, other):
            process.kill()
            process.wait()


def test_benchmark_projects_use_what_the_library_shape_provides() -> None:
    """run.py's generated models and tests import what a default project of
    the library shape has (extensions.Base and db) and use the plugin's
    ``app`` fixture (flask_safe_migrations.pytest_plugin)."""
    from flask_safe_migrations import pytest_plugin

    extensions = (ROOT / "template" / "{{package_name}}" / "extensions.py").read_text()
    for name in ("Base", "db"):
        assert re.search(rf"^(class {name}\b|{name} = )", extensions, re.M), name
    assert "from ..extensions import Base" in benchmark.model_module(1)
    assert "from my_flask_app.extensions import db" in benchmark.BENCH_TESTS
    assert '@pytest.mark.usefixtures("app")' in benchmark.BENCH_TESTS
    assert callable(getattr(pytest_plugin, "app", None))


def test_shape_benchmark_starts_reports_its_targets_and_its_section_survives(
    tmp_path,
) -> None:
    """benchmarks/shape.py (issue 20: the library shape against the shape
    before it) judges the warm-suite target, estimates the cookiecutter-flask
    ratio and says it is an estimate, and replaces only its own section of
    BENCHMARKS.md, which run.py keeps."""
    from benchmarks import shape

    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "shape.py"), "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--before" in result.stdout and "--warm" in result.stdout
    args = argparse.Namespace(runs=1, warm=3, before="5944b91", load_before="1.0")

    def measured(warm: float, green: float) -> dict:
        return {
            "before": {
                "first_green": [10.0],
                "first_green_cpu": [8.0],
                "warm_suite": [2.0],
                "warm_suite_cpu": [1.6],
                "tests": 93,
            },
            "library": {
                "first_green": [green],
                "first_green_cpu": [4.0],
                "warm_suite": [warm],
                "warm_suite_cpu": [1.2],
                "tests": 25,
            },
        }

    good = shape.report(measured(1.0, 5.0), args)
    bad = shape.report(measured(1.2, 9.0), args)
    assert "| 0.50x |" in good and "0.50x wall clock, met;" in good
    assert "| 0.60x |" in bad and "0.60x wall clock, NOT met;" in bad
    assert "| warm suite, CPU | 1.60 s | 1.20 s | 0.75x |" in good
    assert "0.75x CPU, NOT met." in good
    assert "| tests in the generated suite | 93 | 25 | |" in good
    assert "not measured" in good and "estimate" in good
    # before / cookiecutter-flask times library / before.
    loaded = shape.COOKIECUTTER_FLASK_RATIOS["loaded"]
    assert f"about {0.5 * loaded:.2f}x (loaded)" in good

    section = shape.report(measured(1.0, 5.0), args)
    document = "# Benchmarks\n\n## Other\n\ntext\n"
    once = shape.replace_section(document, section)
    assert once.startswith(document) and once.count(shape.SECTION) == 1
    newer = shape.replace_section(once + "\n## Later\n\nmore\n", bad)
    assert newer.count(shape.SECTION) == 1 and "## Later" in newer
    assert "0.60x wall clock, NOT met" in newer and "0.50x wall clock" not in newer
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(newer)
    assert shape.kept_section(path) == bad


def test_rolling_deploy_watch_sees_a_lock_wait_and_what_holds_the_lock(
    server,
) -> None:
    """The rolling-deploy benchmark puts a slow phase down to a lock by its
    watcher: a statement waiting for a lock that another transaction holds is
    seen, with how long it waited and (PostgreSQL, InnoDB) the holder."""
    from benchmarks import rolling_deploy

    with server.database() as url:
        bind = engine(url)
        with bind.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        holder, waiter = bind.connect(), bind.connect()
        holder.begin()
        holder.exec_driver_sql("UPDATE t SET id = 2 WHERE id = 1")
        watch = rolling_deploy.Watch(url)
        watch.start()
        blocked = threading.Thread(
            target=lambda: waiter.exec_driver_sql("UPDATE t SET id = 3 WHERE id = 1")
        )
        blocked.start()
        time.sleep(0.5)
        holder.commit()  # the waiter goes on (and finds no row id 1)
        blocked.join()
        waiter.commit()
        watch.stop()
        holder.close(), waiter.close()
        bind.dispose()
    assert watch.error is None
    [wait] = watch.waits.values()
    assert wait.query.startswith("UPDATE t SET id = 3")
    assert 0.2 < wait.seconds < 5
    assert "UPDATE t SET id = 2" in wait.blockers or "idle" in wait.blockers
    assert watch.cpu and 0 <= watch.cpu[-1][1] <= watch.cpu[-1][2]
