"""A broad sweep of bad inputs through the real ``stpn`` command line (one subprocess per case).

``python -m benchmarks.bad_input_sweep [--only WORD] [--keep DIR]`` builds tiny files (a clip,
untrained detector and tracker runs, CocoVID and GOT-10k datasets), breaks them in one way per
case and prints one line per case::

    PASS  case name                      exit  last stderr line

A case FAILS when the command prints a traceback, or accepts what it should refuse (exit 0 for
an error case, "No problems found." for a ``data check`` case), or changes an input it was
given. The last line is the summary. Exit status: 1 if any case failed.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Case:
    """``argv`` after ``stpn``; ``expect``: ``"error"`` (non-zero exit, one-line message),
    ``"problems"`` (``data check`` exits 1 listing problems) or ``"ok"`` (exit 0);
    ``unchanged``: files whose bytes must be the same afterwards; ``setup``: run first."""

    name: str
    argv: list[str]
    expect: str = "error"
    unchanged: tuple[Path, ...] = ()
    setup: Optional[Callable[[], None]] = None


def run_stpn(argv: list[str]) -> tuple[int, str, str]:
    """Run ``python -m stpn ARGV`` (one thread); ``(exit code, stdout, stderr)``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    env.pop("STPN_TRACEBACK", None)
    done = subprocess.run([sys.executable, "-m", "stpn", *argv], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=600)
    return done.returncode, done.stdout, done.stderr


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def verdict(case: Case, code: int, out: str, err: str, before: dict[Path, bytes]) -> str:
    """``""`` when the case passed, else why it failed."""
    if "Traceback" in err:
        return "traceback"
    if any(path.read_bytes() != data for path, data in before.items()):
        return "an input was changed"
    if case.expect == "ok":
        return "" if code == 0 else "refused a good input"
    if case.expect == "problems":
        return "" if code == 1 and "Problems (" in out else "silently accepted"
    if code == 0:
        return "silently accepted"
    return "" if last_line(err) else "failed without a message"


def run_case(case: Case) -> tuple[bool, str]:
    if case.setup is not None:
        case.setup()
    before = {path: path.read_bytes() for path in case.unchanged}
    code, out, err = run_stpn(case.argv)
    why = verdict(case, code, out, err, before)
    message = last_line(err) if case.expect != "problems" else next(
        (line.strip() for line in out.splitlines() if line.startswith("  ") and ": " in line and "/" in line),
        last_line(out))
    status = "PASS" if not why else "FAIL"
    print(f"{status}  {case.name:<44} {code:>4}  {message[:150]}" + (f"   <- {why}" if why else ""), flush=True)
    return not why, why


# --- the files ---------------------------------------------------------------------------------

def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _not_utf8(path: Path) -> None:
    path.write_bytes(b"\xff\xfe" + path.read_bytes())


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


class Files:
    """Every file the cases use, made once under ``base``."""

    def __init__(self, base: Path) -> None:
        sys.path.insert(0, str(REPO))
        from tests import reliability_fixtures as fx

        self.base, self.fx = base, fx
        self.clip = fx.write_clip(base / "clip.mp4")
        self.detector = fx.detector_run(base / "detector")
        self.tracker = fx.tracker_run(base / "tracker")
        self.cocovid = fx.cocovid_data(base / "cocovid")
        self.got = fx.got10k_data(base / "got")
        self.got_val = fx.got10k_data(base / "got", "val")
        self.det_cfg = fx.detector_config(base / "det.yaml", self.cocovid)
        self.trk_cfg = fx.track_config(base / "trk.yaml", self.got)
        self.bad = fx.bad_checkpoints(base / "bad")
        self.a_file = base / "a_file"
        self.a_file.write_text("a file, not a folder")
        self.link = base / "link.mp4"
        os.link(self.clip, self.link)

    def path(self, name: str) -> Path:
        return self.base / name

    def bad_run(self, kind: str, bad: Path) -> str:
        """A run directory of ``kind`` (``detector`` / ``tracker``) whose only weights are ``bad``."""
        run = self.base / f"{kind}_{bad.name}"
        if not run.exists():
            run.mkdir()
            shutil.copy(getattr(self, kind) / f"{kind}.json", run)
            target = run / ("model.safetensors" if bad.suffix == ".safetensors" else "checkpoint.pt")
            shutil.copy(bad, target)
        return str(next(run.glob("*.safetensors"), run / "checkpoint.pt"))


# --- the cases ---------------------------------------------------------------------------------

def data_loss_cases(f: Files) -> list[Case]:
    clip, det, trk = str(f.clip), str(f.detector), str(f.tracker)
    finished = f.path("finished_run")
    finished.mkdir()
    (finished / "checkpoint.pt").write_bytes(b"a finished run")
    (finished / "stage2").mkdir()
    (finished / "stage2" / "model.safetensors").write_bytes(b"a finished stage")
    keep = (f.clip, finished / "checkpoint.pt", finished / "stage2" / "model.safetensors")
    box = ["--box", "10,10,20,20"]
    return [
        Case("detect --out = input video", ["detect", clip, "--checkpoint", det, "--out", clip], unchanged=keep),
        Case("detect --json = input video", ["detect", clip, "--checkpoint", det, "--json", clip], unchanged=keep),
        Case("detect --out = hard link of input", ["detect", clip, "--checkpoint", det, "--out", str(f.link)],
             unchanged=keep),
        Case("detect --json = checkpoint weights", ["detect", clip, "--checkpoint", det, "--json",
                                                    str(f.detector / "model.safetensors")]),
        Case("track --out = input video", ["track", clip, *box, "--checkpoint", trk, "--out", clip], unchanged=keep),
        Case("track --txt = input video", ["track", clip, *box, "--checkpoint", trk, "--txt", clip], unchanged=keep),
        Case("track --txt = hard link of input", ["track", clip, *box, "--checkpoint", trk, "--txt", str(f.link)],
             unchanged=keep),
        Case("track --out = --txt", ["track", clip, *box, "--checkpoint", trk, "--out", str(f.path("x.mp4")),
                                     "--txt", str(f.path("x.mp4"))]),
        Case("train --out finished run, no --resume", ["train", "--config", str(f.det_cfg), "--out", str(finished)],
             unchanged=keep),
        Case("train-track --out finished run", ["train-track", "--config", str(f.trk_cfg), "--out", str(finished)],
             unchanged=keep),
    ]


def unwritable_cases(f: Files) -> list[Case]:
    clip, det, trk, cfg, tcfg = str(f.clip), str(f.detector), str(f.tracker), str(f.det_cfg), str(f.trk_cfg)
    folder, video_folder = f.path("a_dir"), f.path("a_dir.mp4")
    folder.mkdir()
    video_folder.mkdir()
    under = f"{f.a_file}/sub"
    cases = []
    for where, target_file, target_video, target_dir in (
            ("parent is a file", under + "/x", under + "/x.mp4", under + "/d"),
            ("file where a dir is needed", None, None, str(f.a_file)),
            ("dir where a file is needed", str(folder), str(video_folder), None)):
        runs = {
            "detect --json": (["detect", clip, "--checkpoint", det, "--json"], target_file),
            "detect --out": (["detect", clip, "--checkpoint", det, "--out"], target_video),
            "track --txt": (["track", clip, "--box", "10,10,20,20", "--checkpoint", trk, "--txt"], target_file),
            "eval --json": (["eval", "--config", cfg, "--checkpoint", det, "--json"], target_file),
            "eval-track --results": (["eval-track", "--data", str(f.got), "--split", "val", "--checkpoint", trk,
                                      "--results"], target_dir),
            "train --out": (["train", "--config", cfg, "--out"], target_dir),
            "train-track --out": (["train-track", "--config", tcfg, "--out"], target_dir),
            "data synth --out": (["data", "synth", "--videos", "1", "--frames", "2", "--size", "48", "--out"],
                                 target_dir),
        }
        cases += [Case(f"{name}: {where}", [*argv, target], unchanged=(f.a_file,))
                  for name, (argv, target) in runs.items() if target is not None]
    if hasattr(os, "geteuid") and os.geteuid() != 0:  # root writes into read-only folders anyway
        read_only = f.path("read_only")
        read_only.mkdir(mode=0o500)
        cases += [Case("detect --json: read-only folder", ["detect", clip, "--checkpoint", det, "--json",
                                                           f"{read_only}/d.json"]),
                  Case("train --out: read-only folder", ["train", "--config", cfg, "--out", f"{read_only}/r"])]
    return cases


def checkpoint_cases(f: Files) -> list[Case]:
    cases = []
    for name, bad in f.bad.items():
        det, trk = f.bad_run("detector", bad), f.bad_run("tracker", bad)
        cases += [
            Case(f"detect --checkpoint {name}", ["detect", str(f.clip), "--checkpoint", det]),
            Case(f"eval --checkpoint {name}", ["eval", "--config", str(f.det_cfg), "--checkpoint", det]),
            Case(f"track --checkpoint {name}", ["track", str(f.clip), "--box", "10,10,20,20", "--checkpoint", trk]),
            Case(f"eval-track --checkpoint {name}", ["eval-track", "--data", str(f.got), "--split", "val",
                                                     "--checkpoint", trk]),
        ]
        if bad.suffix == ".pt":
            cases.append(Case(f"train --resume {name}", ["train", "--config", str(f.det_cfg), "--out",
                                                         str(f.path(f"resume_{name}")), "--resume", str(bad)]))
    return cases


def annotation_cases(f: Files) -> list[Case]:
    cases = []
    for name in ("groundtruth.txt", "list.txt", "meta_info.ini"):
        root = _copy(f.got, f.path(f"got_utf8_{name}"))
        _not_utf8(root / "train" / ("list.txt" if name == "list.txt" else f"a/{name}"))
        cfg = f.fx.track_config(f.path(f"trk_{name}.yaml"), root)
        cases += [Case(f"data check: {name} not UTF-8", ["data", "check", str(root)], "problems"),
                  Case(f"train-track: {name} not UTF-8", ["train-track", "--config", str(cfg), "--out",
                                                          str(f.path(f"run_utf8_{name}"))]),
                  Case(f"eval-track: {name} not UTF-8", ["eval-track", "--data", str(root), "--split", "train",
                                                         "--checkpoint", str(f.tracker)])]
    vid = f.path("vid")
    from stpn.data.formats import write_dataset
    from stpn.data.synthetic import CATEGORIES, iter_videos

    write_dataset(iter_videos(1, num_frames=2, size=48, seed=0), CATEGORIES, vid, "vid", "train")
    (vid / "categories.txt").write_bytes("caf\u00e9\n".encode("latin-1"))
    cases.append(Case("data check: VID categories.txt not UTF-8", ["data", "check", str(vid)], "problems"))
    return cases


def frame_cases(f: Files) -> list[Case]:
    root = _copy(f.cocovid, f.path("cocovid_truncated"))
    frames = sorted(root.rglob("*.jpg"))
    _truncate([p for p in frames if "/val/" in str(p)][3])
    for frame in (p for p in frames if "/train/" in str(p)):
        _truncate(frame)
    cfg = f.fx.detector_config(f.path("det_truncated.yaml"), root)
    nan_cfg = f.fx.detector_config(f.path("det_nan.yaml"), f.cocovid, lr=1e30, max_iters=6, checkpoint_every=1)
    return [
        Case("eval: truncated JPEG in a val video", ["eval", "--config", str(cfg), "--checkpoint", str(f.detector)]),
        Case("train: truncated JPEGs in the train split", ["train", "--config", str(cfg), "--out",
                                                           str(f.path("run_truncated"))]),
        Case("data check: truncated JPEG", ["data", "check", str(root)], "problems"),
        Case("train: NaN loss (lr 1e30)", ["train", "--config", str(nan_cfg), "--out", str(f.path("run_nan"))]),
    ]


def data_check_cases(f: Files) -> list[Case]:
    from PIL import Image

    sizes = _copy(f.got, f.path("got_sizes"))
    Image.new("RGB", (40, 30)).save(sizes / "train" / "b" / "00000005.jpg")
    cover = _copy(f.got, f.path("got_cover"))
    (cover / "train" / "a" / "cover.label").unlink()
    absent = _copy(f.got, f.path("got_absent"))
    (absent / "train" / "b" / "absence.label").write_text("1\n" + "0\n" * 9)
    one_line = _copy(f.got, f.path("got_one_line"))
    gt = one_line / "train" / "b" / "groundtruth.txt"
    gt.write_text(gt.read_text().splitlines()[0] + "\n")
    return [Case(f"data check: {what}", ["data", "check", str(root)], "problems")
            for what, root in (("frames of two sizes in a video", sizes), ("GOT-10k without cover.label", cover),
                               ("GOT-10k first frame absent", absent), ("GOT-10k one-line groundtruth", one_line))]


def value_cases(f: Files) -> list[Case]:
    import yaml

    zero = f.path("trk_zero.yaml")
    cfg = yaml.safe_load(f.trk_cfg.read_text())
    cfg["data"]["samples_per_epoch"] = 0
    zero.write_text(yaml.safe_dump(cfg))
    online = f.fx.track_config(f.path("trk_online.yaml"), f.got, update_every=5)
    clip, trk = str(f.clip), str(f.tracker)
    return [
        Case("detect --score-thresh nan", ["detect", clip, "--checkpoint", str(f.detector), "--score-thresh", "nan"]),
        Case("track --box larger than the frame", ["track", clip, "--box", "0,0,100,40", "--checkpoint", trk]),
        Case("train-track samples_per_epoch: 0", ["train-track", "--config", str(zero), "--out",
                                                  str(f.path("run_zero"))]),
        Case("train-track unknown online key", ["train-track", "--config", str(online), "--out",
                                                str(f.path("run_online"))]),
    ]


def missing_and_malformed_cases(f: Files) -> list[Case]:
    """Files that are missing, empty or not what they claim to be."""
    clip, det, trk = str(f.clip), str(f.detector), str(f.tracker)
    not_video = f.path("not_a_video.mp4")
    not_video.write_bytes(b"\x00 not a video" * 100)
    empty = f.path("empty.mp4")
    empty.write_bytes(b"")
    bad_json = f.path("bad_json_run")
    bad_json.mkdir()
    shutil.copy(f.detector / "model.safetensors", bad_json)
    (bad_json / "detector.json").write_bytes(b"{not json")
    bad_yaml = f.path("bad.yaml")
    bad_yaml.write_text("detector: [unclosed\n")
    no_config = f.path("no_config_run")
    no_config.mkdir()
    box = ["--box", "10,10,20,20"]
    return [
        Case("detect: video not found", ["detect", str(f.path("missing.mp4")), "--checkpoint", det]),
        Case("detect: not a video", ["detect", str(not_video), "--checkpoint", det]),
        Case("detect: empty video file", ["detect", str(empty), "--checkpoint", det]),
        Case("detect: checkpoint folder not found", ["detect", clip, "--checkpoint", str(f.path("nowhere"))]),
        Case("detect: run without detector.json", ["detect", clip, "--checkpoint", str(no_config)]),
        Case("detect: detector.json not JSON", ["detect", clip, "--checkpoint", str(bad_json)]),
        Case("track: not a video", ["track", str(not_video), *box, "--checkpoint", trk]),
        Case("track: malformed --box", ["track", clip, "--box", "1,2,x", "--checkpoint", trk]),
        Case("track: run without tracker.json", ["track", clip, *box, "--checkpoint", str(no_config)]),
        Case("eval: config not found", ["eval", "--config", str(f.path("missing.yaml")), "--checkpoint", det]),
        Case("train: config not YAML", ["train", "--config", str(bad_yaml), "--out", str(f.path("run_yaml"))]),
        Case("train: data root not found", ["train", "--config", str(f.fx.detector_config(
            f.path("det_noroot.yaml"), f.path("no_data"))), "--out", str(f.path("run_noroot"))]),
        Case("eval-track: data root not found", ["eval-track", "--data", str(f.path("no_data")), "--checkpoint", trk]),
        Case("train-track: data root not found", ["train-track", "--config", str(f.trk_cfg), "--data",
                                                  str(f.path("no_data")), "--out", str(f.path("run_nodata"))]),
        Case("data check: folder not found", ["data", "check", str(f.path("no_data"))], "problems"),
        Case("data check: not a dataset", ["data", "check", str(f.detector)], "problems"),
    ]


def good_cases(f: Files) -> list[Case]:
    """Good inputs still work (a sweep that refuses everything would pass the rest)."""
    clip = str(f.clip)
    return [
        Case("good: detect", ["detect", clip, "--checkpoint", str(f.detector), "--mode", "causal", "--num-support",
                              "1", "--out", str(f.path("good.mp4")), "--json", str(f.path("good.json"))], "ok",
             unchanged=(f.clip,)),
        Case("good: track", ["track", clip, "--box", "10,10,20,20", "--checkpoint", str(f.tracker), "--txt",
                             str(f.path("good.txt"))], "ok", unchanged=(f.clip,)),
        Case("good: data check", ["data", "check", str(f.got)], "ok"),
    ]


GROUPS = (data_loss_cases, unwritable_cases, checkpoint_cases, annotation_cases, frame_cases, data_check_cases,
          value_cases, missing_and_malformed_cases, good_cases)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="run only the cases whose name contains this")
    parser.add_argument("--group", choices=[g.__name__.removesuffix("_cases") for g in GROUPS], default=None,
                        help="run only this group of cases")
    parser.add_argument("--keep", type=Path, default=None, help="build the files here and keep them")
    args = parser.parse_args(argv)
    base = args.keep or Path(tempfile.mkdtemp(prefix="stpn_sweep_"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        files = Files(base)
        groups = [g for g in GROUPS if args.group in (None, g.__name__.removesuffix("_cases"))]
        cases = [case for group in groups for case in group(files)]
        cases = [c for c in cases if args.only is None or args.only in c.name]
        results = [run_case(case) for case in cases]
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    failed = [why for ok, why in results if not ok]
    print(f"{len(results)} cases: {len(results) - len(failed)} PASS, {len(failed)} FAIL "
          f"({failed.count('traceback')} tracebacks, {failed.count('silently accepted')} silent acceptances, "
          f"{failed.count('an input was changed')} inputs changed)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
