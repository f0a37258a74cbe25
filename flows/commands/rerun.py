"""``din rerun RUN_ID``: re-execute a finished run from its recorded config and data."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rerun",
        help="re-execute a finished MLflow run (same config, seed and data) and compare",
        description="Re-run the din-train flow from a run's recorded config, seed and data "
        "fingerprint, from the raw files (data caches refreshed), and compare the test "
        "metrics. Refuses when the raw data no longer matches the recorded fingerprint. "
        "Exit code 0 when the test metrics are identical, 1 when they differ.",
    )
    parser.add_argument("run_id", help="MLflow run id (see `din ui`)")
    parser.add_argument(
        "--register",
        action="store_true",
        help="also register the rerun's model (off by default: it duplicates a version)",
    )
    parser.add_argument("--work-dir", help="caches and run folders (default outputs/pipeline)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from flows.commands._common import prefect_session, results_table
    from flows.runtime import apply_prefect_defaults
    from tasks.reproduce import check_data, compare_metrics, load_recorded_run

    apply_prefect_defaults()

    with tempfile.TemporaryDirectory(prefix="din-rerun-") as scratch:
        recorded = load_recorded_run(args.run_id, Path(scratch))
        if recorded.status != "FINISHED":
            print(f"din rerun: run {args.run_id} is {recorded.status}, not FINISHED")
            return 2
        source = check_data(recorded)
        print(f"data unchanged ({recorded.manifest.get('fingerprint')}); re-running ...")
        with prefect_session():
            from flows.train_flow import din_train

            summary = din_train(
                dataset=recorded.dataset,
                source=str(source),
                model=recorded.model,
                regularizer=recorded.regularizer,
                overrides=[],
                seed=recorded.seed,
                config_file=str(recorded.config_file),
                max_len=recorded.max_len,
                on_bad_lines=recorded.on_bad_lines,
                register_model=args.register,
                work_dir=args.work_dir,
                rerun_of=recorded.run_id,
                refresh_cache=True,
                expected_fingerprint=recorded.manifest.get("fingerprint"),
            )
    print()
    print(results_table(summary))
    new_metrics = {f"test_{k}": v for k, v in summary["test"].items()}
    rows = compare_metrics(recorded.metrics, new_metrics)
    print(f"\n{'metric':14}{'recorded':>12}{'rerun':>12}")
    for key, old, new, same in rows:
        print(f"{key:14}{old:12.6f}{new:12.6f}  {'same' if same else 'DIFFERENT'}")
    if all(same for *_, same in rows):
        print(f"reproduced: run {summary['run_id']} has the same test metrics as {args.run_id}")
        return 0
    print(f"NOT reproduced: test metrics of {summary['run_id']} differ from {args.run_id}")
    return 1
