"""`nsfw-mobilenet review`: keep a person's verdicts on scanned images as the feedback set that
`nsfw-mobilenet finetune` trains on (thesis §6.2: "the model could be retrained with this new information")."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from nsfw_mobilenet.core.exit_codes import EXIT_OK, EXIT_USAGE
from nsfw_mobilenet.io import feedback

PROGRAM = "nsfw-mobilenet review"


def add_reviews(scan_files: list[Path], feedback_file: Path, root: Path) -> tuple[list[feedback.Feedback], int]:
    """Merge the verdicts of `scan_files` into the feedback set at `feedback_file`; (the new verdicts, the set's
    size). Nothing is written when a file has a bad row."""
    new = [item for scan in scan_files for item in feedback.reviewed(feedback.read_scan_rows(scan), scan, root)]
    kept = feedback.merged(feedback.load_feedback(feedback_file), new)
    feedback.save_feedback(kept, feedback_file)
    return new, len(kept)


def _run_command(args: argparse.Namespace) -> int:
    try:
        new, total = add_reviews(args.scan_files, args.feedback, args.root)
    except (feedback.BadReview, OSError) as error:
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    verdicts = Counter(item.verdict for item in new)
    overruled = sum(item.decision in feedback.VERDICTS and item.decision != item.verdict for item in new)
    print(f"{len(new)} verdicts ({verdicts[feedback.SAFE]} safe, {verdicts[feedback.UNSAFE]} unsafe; {overruled} "
          f"overrule an automatic decision); feedback set {args.feedback}: {total} images. Next: "
          f"nsfw-mobilenet finetune --model <model.keras> --feedback {args.feedback} --data <training data>")
    return EXIT_OK


def add_command(subparsers: argparse._SubParsersAction) -> None:
    """Register `nsfw-mobilenet review SCAN_FILE… --feedback FILE`."""
    parser = subparsers.add_parser(
        "review", help="keep a person's verdicts on scanned images as feedback for finetune (§6.2)",
        description="Read scan outputs (CSV or JSON lines) in which a person filled a `verdict` column with safe or "
                    "unsafe, and add those images, their content hash, the verdict and the model's score to a "
                    "feedback set (a newer verdict on the same image replaces an older one).")
    parser.add_argument("scan_files", metavar="SCAN_FILE", type=Path, nargs="+",
                        help="a scan's --output (CSV or .jsonl) with a verdict column; rows left empty are skipped")
    parser.add_argument("--feedback", type=Path, required=True,
                        help="the feedback set to add to (JSON lines; made if absent)")
    parser.add_argument("--root", type=Path, default=Path("."),
                        help="the folder the scan ran in, which its relative paths start from (default: here)")
    parser.set_defaults(func=_run_command)
