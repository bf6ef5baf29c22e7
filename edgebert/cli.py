"""The `edgebert` command: one subcommand per stage, thin over the stage functions.

A stage's command is made from its line in `edgebert.stages.STAGES` (`_stage_command`):
its config's options, `--restart` where it resumes, its `HELP` as `--help`; finetune and
distill are written here, and the commands that are not stages. torch and transformers
are imported inside command bodies, so `--help` is instant.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing

import click

from edgebert import __version__
from edgebert.compress.recipe import Recipe
from edgebert.config import TASK_KINDS, BenchConfig, TaskConfig, TrainConfig, choices, field_docs
from edgebert.errors import UserError
from edgebert.stages import STAGES, Stage
from edgebert.stages.pretrain.config import TokenizerConfig

BUDGET = field_docs(Recipe)["max_accuracy_drop"]
"""The accuracy budget's help, for every command that takes it."""


class _Group(click.Group):
    """Turns a `UserError` into one line on stderr and exit status 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as err:  # the stage has removed what it wrote (artifact.building)
            click.echo(f"error: {' '.join(str(err).split())}", err=True)
            sys.exit(2)
        except OSError as err:
            import errno

            if err.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES):
                raise
            # the stage freed the space its half-written artifact took (artifact.building)
            click.echo(f"error: {err.filename or 'output'}: {err.strerror}; free space or "
                       f"choose another --out, then run the same command again", err=True)
            sys.exit(2)
        except click.UsageError as err:  # a bad option value: one line too, with the fix
            hint = f" (see `edgebert {ctx.invoked_subcommand} --help`)" \
                if ctx.invoked_subcommand else ""
            click.echo(f"error: {err.format_message()}{hint}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted; rerun the same command to resume", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"],
                                           "max_content_width": 100})
@click.version_option(__version__, prog_name="edgebert")
def main():
    """EdgeBERT: compress BERT for CPUs and phones, and measure what each step keeps.

    \b
    Start here:
      edgebert sources list                      packaged models and data (offline)
      edgebert finetune --model minilm-l6 --task rotten-tomatoes --out runs/rt/teacher
      edgebert evaluate runs/rt/teacher --split test
    """


def _dataclass_options(cls, skip=(), defaults: dict | None = None, required=()):
    """click options from a config dataclass: names, types and help from its fields (a
    nested config is skipped: the command adds its options). A list is written 0,2,4 (a
    field's metadata may name another example); an optional number whose default is not
    None takes `none` too. `defaults`: what this command uses instead of the dataclass
    default (shown in --help). `required`: options without a default here (say --out)."""
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)

    def decorate(fn):
        for f in reversed(dataclasses.fields(cls)):
            kind = _bare(hints[f.name])
            if f.name in skip or dataclasses.is_dataclass(kind):
                continue
            default = f.default if f.default is not dataclasses.MISSING else None
            if f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            default = (defaults or {}).get(f.name, default)
            flag, doc = f.name.replace("_", "-"), docs.get(f.name, "")
            shown = ",".join(map(str, default)) if isinstance(default, list) and default \
                else default
            extra: dict = {"help": doc + ("" if f.name in required else f" [default: {shown}]")}
            if choices(kind):  # a Literal: its values, listed in --help
                kind = click.Choice(choices(kind))
            if typing.get_origin(kind) is list:
                kind, extra["metavar"] = str, f.metadata.get("metavar", "0,2,4")
            elif kind in (int, float) and kind is not hints[f.name] and default is not None:
                kind = _OrNone(kind)  # optional, set by default: `none` unsets it
            if kind is bool:
                fn = click.option(f"--{flag}/--no-{flag}", f.name, default=None, **extra)(fn)
                continue
            if f.name in required:  # no default at all: click 8.5 takes default=None as given
                extra["required"] = True
            else:
                extra["default"] = None  # unset: the dataclass default applies (_pick)
            fn = click.option(f"--{flag}", f.name, type=kind, **extra)(fn)
        return fn

    return decorate


NONE = object()
"""`none` given to an optional option whose default is not None: the field is set to None."""


class _OrNone(click.ParamType):
    """A number, or `none`."""

    def __init__(self, kind: type):
        self.kind, self.name = kind, f"{kind.__name__} or none"

    def get_metavar(self, *args, **kwargs) -> str:
        return f"{self.kind.__name__.upper()}|none"

    def convert(self, value, param, ctx):
        if value is NONE or isinstance(value, str) and value.strip().lower() == "none":
            return NONE
        try:
            return self.kind(value)
        except ValueError:
            self.fail(f"expected a number or none, got '{value}'", param, ctx)


def _old_name(old: str, new: str):
    """An option's former name, hidden from --help and still taken, so that scripts written
    with it keep running (`_from_old_name` says the new one)."""
    return click.option(old, "old_" + new.lstrip("-").replace("-", "_"), type=float,
                        default=None, hidden=True, help=f"Now {new}.")


def _from_old_name(old_value, value, old: str, new: str):
    """The option's value, from its former name where a script still gives that."""
    if old_value is None:
        return value
    click.echo(f"warning: {old} is now {new}; the old name will be removed", err=True)
    return old_value


def _bare(hint):
    """`X | None` -> X."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def _pick(cls, values: dict, base=None, **nested):
    """`cls` from the options the user set (lists parsed from 0,2,4, `none` to None) over
    `base` (default: the dataclass's defaults), with its `nested` configs; each other nested
    config (loss, train) is the stage's default for it with the user's options: pruning's
    recovery trains 2 epochs unless --epochs says otherwise."""
    hints, inner = typing.get_type_hints(cls), _nested(cls)
    picked = {}
    for f in dataclasses.fields(cls):
        value, kind = values.get(f.name), _bare(hints[f.name])
        if f.name in nested:
            continue
        if f.name in inner:
            picked[f.name] = _pick(kind, values, base=inner[f.name])
            continue
        if value is None:
            continue
        if typing.get_origin(kind) is list and isinstance(value, str):
            option = f"--{f.name.replace('_', '-')}"
            value = _int_list(option, value) if typing.get_args(kind) == (int,) else \
                [v.strip() for v in value.split(",") if v.strip()]
        picked[f.name] = None if value is NONE else value
    if base is not None:
        return dataclasses.replace(base, **picked, **nested)
    return cls(**picked, **nested)


def _nested(cls) -> dict[str, object]:
    """The nested configs of a stage's config (loss, train, task), in field order, each at
    the stage's default for it (pruning's recovery and pretraining have their own epochs
    and learning rate)."""
    hints = typing.get_type_hints(cls)
    return {f.name: f.default_factory() for f in dataclasses.fields(cls)
            if dataclasses.is_dataclass(_bare(hints[f.name]))}


def _restart(fn):
    return click.option("--restart", is_flag=True, help="Discard an unfinished run in --out "
                        "instead of resuming it.")(fn)


def _stage_options(stage: Stage):
    """A stage command's options: its config's (`stage.required` without a default), then
    each nested config's at the stage's default for it, then `--restart` where the stage
    resumes."""

    def decorate(fn):
        fn = _restart(fn) if stage.resumes else fn
        for default in reversed(_nested(stage.config).values()):
            fn = _dataclass_options(type(default), defaults=dataclasses.asdict(default))(fn)
        return _dataclass_options(stage.config, required=stage.required)(fn)

    return decorate


def _stage_command(stage: Stage) -> click.Command:
    """The command of a stage whose options are its config's: `--help` is its HELP, and it
    runs the stage on the config the options make."""

    @_stage_options(stage)
    def command(restart=False, **options):
        stage.run(_pick(stage.config, options), log=click.echo,
                  **({"restart": restart} if stage.resumes else {}))

    return click.command(stage.name, help=stage.help)(command)


def _columns(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in values:
        role, sep, col = item.partition("=")
        if not sep or not role or not col:
            raise UserError(f"--columns: expected ROLE=COLUMN, got '{item}'")
        out[role] = col
    return out


def _task_options(fn):
    fn = click.option("--columns", multiple=True, metavar="ROLE=COLUMN",
                      help=field_docs(TaskConfig)["columns"] + " Repeat for each role.")(fn)
    fn = click.option("--split-seed", type=int, default=None,
                      help=field_docs(TaskConfig)["seed"] + " [default: 13]")(fn)
    fn = click.option("--kind", type=click.Choice(TASK_KINDS), default=None,
                      help=field_docs(TaskConfig)["kind"])(fn)
    return fn


def _task(task, kind, columns, split_seed) -> TaskConfig:
    return TaskConfig(task, kind, _columns(columns), 13 if split_seed is None else split_seed)


FINETUNE, DISTILL = STAGES["finetune"], STAGES["distill"]


@main.command(help=FINETUNE.help)
@_dataclass_options(FINETUNE.config, required=FINETUNE.required)
@click.option("--task", default="rotten-tomatoes", show_default=True,
              help=field_docs(TaskConfig)["name"])
@_task_options
@_dataclass_options(TrainConfig, defaults=dataclasses.asdict(_nested(FINETUNE.config)["train"]))
@_restart
def finetune(task, kind, columns, split_seed, restart, **options):
    # the task's options are spelled for the command line (--task, --split-seed, ROLE=COLUMN)
    cfg = _pick(FINETUNE.config, options, task=_task(task, kind, columns, split_seed))
    FINETUNE.run(cfg, restart=restart, log=click.echo)


@main.command()
@click.argument("model")
@click.option("--task", default=None, help="Task to score on [default: the one the model was "
              "trained on, from its stage.json]. " + field_docs(TaskConfig)["name"])
@_task_options
@click.option("--split", default="test", show_default=True, help="train, dev or test.")
@click.option("--max-length", type=int, default=None,
              help="Tokens per example [default: the model's training setting].")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(model, task, kind, columns, split_seed, split, max_length, as_json):
    """Score MODEL (a model directory or packaged name) on a task split.

    \b
    Examples:
      edgebert evaluate runs/rt/teacher
      edgebert evaluate runs/rt/teacher --split dev --json
    """
    from edgebert.evaluate import evaluate as run

    task_cfg = _task(task, kind, columns, split_seed) if task else None
    res = run(model, task_cfg, split, max_length)
    if as_json:
        click.echo(json.dumps(res, indent=2))
    else:
        for key, value in res.items():
            if key == "outcomes":  # per example: --json has them
                continue
            click.echo(f"{key:>18}  {value:.4f}" if isinstance(value, float)
                       else f"{key:>18}  {value}")


def _int_list(option: str, value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(x) for x in value.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"{option}: expected comma-separated whole numbers like 0,2,4, "
                        f"got '{value}'") from None


@main.command(help=DISTILL.help)
@_stage_options(DISTILL)
def distill(restart, **options):
    cfg = _pick(DISTILL.config, options)  # with --corpus, general distillation
    STAGES["distill-general" if cfg.corpus else "distill"].run(cfg, restart=restart,
                                                               log=click.echo)


@main.command()
@click.argument("artifacts", nargs=-1)
@_dataclass_options(BenchConfig)
@click.option("--texts", default=None,
              help="A text file, one text per line: time each artifact on these, one at a "
                   "time (batch 1, each at its own length, tokenizing included), what an app "
                   "sees, instead of the --batch x --seq grid of padded inputs; given --batch "
                   "or --seq too, after the grid, in the same processes. --runs texts "
                   "per process.")
@click.option("--fresh", is_flag=True,
              help="Start a fresh interpreter for every turn, as the CI gate was calibrated: "
                   "for results `edgebert check --baseline/--candidate` compares.")
@click.option("--out", "out_path", default=None, help="Write the JSON result here.")
@click.option("--import", "import_path", default=None,
              help="Instead of measuring: read a result made on another device (for example "
                   "a phone or ARM board running `edgebert bench`), mark it imported, write it "
                   "to --out.")
def bench(artifacts, texts, fresh, out_path, import_path, **options):
    """Latency of artifacts (PyTorch, ONNX, ORT, TorchScript), interleaved A B C A B C.

    Each turn runs one artifact in a process of its own at fixed threads,
    after warm-up, so artifacts share the machine's noise but never a thread
    pool; that process times every grid point (and the texts) in turn. The
    first round starts fresh interpreters (peak memory is theirs); on Linux
    later turns fork from a server that imported the runtime once, so a
    PyTorch turn starts in under a second instead of 4-5. Reports
    p50/p90/p99, mean, spread, throughput and peak memory per (artifact,
    batch, sequence), with the machine's fingerprint.

    \b
    Examples:
      edgebert bench runs/rt/teacher runs/rt/int8/x86-avx2 --batch 1,8 --seq 32,128 --out b.json
      edgebert bench runs/rt/teacher runs/rt/export/ort-text --texts reviews.txt --runs 200
      edgebert bench runs/rt/teacher runs/rt/int8/x86-avx2 --seq 128 --texts reviews.txt
      edgebert bench runs/rt/int8/x86-avx2 --fresh --rounds 8 --out baseline.json
      edgebert bench --import pi5.json --out runs/rt/bench/pi5.json
    """
    from edgebert.artifact import write_json
    from edgebert.bench.run import bench as run
    from edgebert.bench.run import imported, load

    if import_path:
        data = imported(load(import_path))
    else:
        if not artifacts:
            raise UserError("edgebert bench: name at least one artifact (or --import FILE)")
        cfg = _pick(BenchConfig, options)
        workloads = None
        if texts and (options.get("batch") is not None or options.get("seq") is not None):
            from edgebert.bench.latency import Workload
            from edgebert.bench.run import grid

            workloads = grid(cfg) + [Workload(texts=texts, warmup=cfg.warmup, runs=cfg.runs)]
        data = run(list(artifacts), cfg, log=click.echo, texts=texts, workloads=workloads,
                   fork=False if fresh else None)
    for r in data["results"]:
        click.echo(f"{r['artifact']:<32} b{r['batch']:<3} s{r['seq']!s:<5} p50 {r['p50_ms']:8.2f} ms"
                   f"  p90 {r['p90_ms']:8.2f}  p99 {r['p99_ms']:8.2f}  "
                   f"{r['throughput_seq_s']:8.1f} seq/s  [{r['source']}"
                   f"{', ' + r['timed_as'] if r.get('timed_as') else ''}]")
    if out_path:
        from pathlib import Path

        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        write_json(Path(out_path), data)
        click.echo(f"wrote {out_path}")


def _percent(value: str, option: str) -> float:
    text = value.strip()
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise UserError(f"{option}: expected a number or a percentage like 5%, got "
                        f"'{value}'") from None


@main.command()
@click.option("--baseline-model", default=None,
              help="The accepted model (an artifact directory or model file): benched here, "
                   "interleaved with --candidate-model in one run, as the gate was "
                   "calibrated. Two separate bench runs meet different noise.")
@click.option("--candidate-model", default=None, help="The new model, benched with it.")
@click.option("--seq", default=128, show_default=True,
              help="With the models: tokens per padded input (batch 1).")
@click.option("--texts", default=None,
              help="With the models: a file of texts, one per line, timed one at a time "
                   "instead of padded inputs.")
@click.option("--bench-out", default=None,
              help="With the models: also write the interleaved bench result here.")
@click.option("--baseline", default=None,
              help="Instead of the models: a bench result (edgebert bench --out) of the "
                   "accepted model.")
@click.option("--candidate", default=None, help="A bench result of the new model.")
@click.option("--max-slowdown", default="5%", show_default=True,
              help="Fail when confidently slower than this (a fraction or a percentage).")
@click.option("--max-drop-vs-baseline", default=0.5, show_default=True,
              help="Fail when the candidate's test accuracy is more than this many points "
                   "under the baseline's. Not compress's max_accuracy_drop: that budget is "
                   "counted from the teacher, this gate from the model the candidate "
                   "replaces, so a release cannot slide down the budget one small drop at "
                   "a time.")
@_old_name("--max-accuracy-drop", "--max-drop-vs-baseline")
@click.option("--alpha", default=0.01, show_default=True,
              help="Significance level of the one-sided Mann-Whitney test.")
@click.option("--summary", default=None,
              help="Write a markdown summary here [default: $GITHUB_STEP_SUMMARY when set].")
@click.option("--require-same-machine", is_flag=True,
              help="Fail (exit 2) when the two results come from different machines.")
def check(baseline_model, candidate_model, seq, texts, bench_out, baseline, candidate,
          max_slowdown, max_drop_vs_baseline, old_max_drop_vs_baseline, alpha, summary,
          require_same_machine):
    """A CI gate: exit 1 on a real slowdown or accuracy drop, 0 otherwise.

    Uses every process: each is summarised by its lower quartile, the ratio is
    the Hodges-Lehmann estimate over those with its rank-based 95 % interval, and
    a Mann-Whitney test must agree. It fails only when the whole interval lies
    beyond the threshold, so noise does not fire it.

    \b
    Examples:
      edgebert check --baseline-model ../main/models/clf --candidate-model models/clf
      edgebert check --baseline main.json --candidate pr.json --max-slowdown 5% \\
          --max-drop-vs-baseline 0.5
    """
    import os

    from edgebert.bench.compare import compare, table
    from edgebert.bench.run import load

    threshold = _percent(max_slowdown, "--max-slowdown")
    max_drop = _from_old_name(old_max_drop_vs_baseline, max_drop_vs_baseline,
                              "--max-accuracy-drop", "--max-drop-vs-baseline")
    models, results = (baseline_model, candidate_model), (baseline, candidate)
    if all(models) and not any(results):
        from edgebert.bench.gate import bench_pair

        base, cand = bench_pair(baseline_model, candidate_model, seq=seq, texts=texts,
                                log=click.echo)
        baseline, candidate = baseline_model, candidate_model
        if bench_out:  # one result file, its two rows named by their role
            from pathlib import Path

            from edgebert.artifact import write_json

            write_json(Path(bench_out), base | {"results": [
                base["results"][0] | {"artifact": "baseline"},
                cand["results"][0] | {"artifact": "candidate"}]})
    elif all(results) and not any(models):
        base, cand = load(baseline), load(candidate)
    else:
        raise UserError("give --baseline-model and --candidate-model (benched here, "
                        "interleaved), or --baseline and --candidate (two bench results)")
    verdicts, warnings = compare(base, cand, threshold, max_drop, alpha)
    for w in warnings:
        click.echo(f"WARNING: {w}", err=True)
    if require_same_machine and any(w.startswith("MACHINES DIFFER") for w in warnings):
        raise UserError("--require-same-machine: the baseline and candidate machines differ")
    if not verdicts:
        raise UserError(f"{candidate}: no (artifact, batch, seq) in common with {baseline}")
    click.echo(table(verdicts, threshold))
    target = summary or os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a") as fh:
            fh.write("## edgebert check\n\n" + "".join(f"> {w}\n" for w in warnings)
                     + table(verdicts, threshold, markdown=True))
    failed = [v for v in verdicts if v.failed]
    click.echo(f"{len(failed)} of {len(verdicts)} comparisons failed" if failed
               else f"all {len(verdicts)} comparisons within thresholds")
    sys.exit(1 if failed else 0)


@main.command()
@click.argument("run_dir")
@click.option("--teacher", default=None,
              help="Artifact (path relative to RUN_DIR) to compare against [default: the "
                   "fine-tuned teacher found in the run].")
@click.option("--max-accuracy-drop", type=float, default=None,
              help=f"{BUDGET} The report also says where no artifact is within it and flags "
                   "a weak teacher [default: a compress run's, from its recipe.yaml; elsewhere "
                   "none: no recommendation].")
@_old_name("--budget", "--max-accuracy-drop")
def report(run_dir, teacher, max_accuracy_drop, old_max_accuracy_drop):
    """Gather RUN_DIR's artifacts and bench results into report.json, .md and .html.

    Bench results are read from RUN_DIR/bench/*.json (`edgebert bench --out`).

    \b
    Example:
      edgebert bench runs/rt/teacher runs/rt/int8/x86-avx2 --out runs/rt/bench/x86.json
      edgebert report runs/rt
    """
    from pathlib import Path

    from edgebert.report.render import markdown, write_report

    budget = _from_old_name(old_max_accuracy_drop, max_accuracy_drop, "--budget",
                            "--max-accuracy-drop")
    workload = "texts"
    if (Path(run_dir) / "recipe.yaml").is_file():  # a compress run: its budget and workload
        from edgebert.compress.recipe import load

        recipe = load(str(Path(run_dir) / "recipe.yaml"))
        budget = recipe.max_accuracy_drop if budget is None else budget
        workload = recipe.bench.workload
    if budget is not None and budget < 0:
        raise UserError(f"--max-accuracy-drop must be >= 0 points, got {budget}")
    rep = write_report(run_dir, teacher, budget=budget, workload=workload)
    click.echo(markdown(rep))
    click.echo(f"wrote {run_dir}/report.json, report.md, report.html")


@main.command()
@click.argument("recipe", required=False)
@click.option("--out", default=None,
              help="Run directory [default: runs/RECIPE, RECIPE the recipe's name]. Rerun the "
                   "same command to resume: finished stages are skipped.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a recipe field, e.g. --set teacher.train.epochs=3 or "
                   "--set students.0.layers=[0,2,4] (the value is read as YAML). Repeatable.")
@click.option("--max-accuracy-drop", type=float, default=None,
              help=f"{BUDGET} Sets the recipe's max_accuracy_drop [default: the recipe's].")
@click.option("--show", is_flag=True, help="Print the resolved recipe and the stages; run nothing.")
def compress(recipe, out, sets, max_accuracy_drop, show):
    """Teacher to report in one command: fine-tune, distil, prune, trim, INT8, export, bench.

    RECIPE is a YAML file or a packaged recipe name (default, tiny); with none,
    the default recipe runs: the packaged MiniLM-L6 on Rotten Tomatoes, offline,
    in 29 minutes on a 2-core Xeon with AMX (longer where training runs in fp32).
    Ends with the report table and the path of report.html.

    \b
    Examples:
      edgebert compress                                   # default recipe -> runs/default
      edgebert compress tiny --out runs/smoke             # the whole chain in about a minute
      edgebert compress my.yaml --set teacher.train.epochs=3 --max-accuracy-drop 0.5
      edgebert compress --show                            # every field of the default recipe
    """
    from pathlib import Path

    from edgebert.compress.recipe import load, resolve

    sets = list(sets) + ([f"max_accuracy_drop={max_accuracy_drop}"]
                         if max_accuracy_drop is not None else [])
    cfg = load(recipe, sets)
    run_dir = out or f"runs/{resolve(recipe).stem}"
    if show:
        import yaml

        from edgebert.compress.run import steps_of
        from edgebert.config import to_dict

        click.echo(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        for i, step in enumerate(steps_of(cfg, Path(run_dir), click.echo), 1):
            click.echo(f"[{i}] {step.title} -> {step.out}")
        return
    from edgebert.compress.run import compress as run
    from edgebert.report.render import markdown

    rep = run(cfg, run_dir, log=click.echo)
    click.echo(markdown(rep))
    click.echo(f"report: {Path(run_dir) / 'report.html'}")




@main.group()
def corpus():
    """Pretraining corpora: one sentence per line, a blank line between documents."""


@corpus.command("build")
@click.option("--out", required=True, help="Directory for PACKAGE.txt files.")
@click.option("--packages", default=None,
              help="Comma-separated Debian packages [default: dict-gcide, wordnet-base, "
                   "fortunes-min, python3.11-doc].")
def corpus_build(out, packages):
    """An offline English corpus from Debian packages (apt-get download + dpkg-deb -x).

    No install and no root: each .deb is downloaded into a temporary directory,
    unpacked, and cleaned into plain text by a cleaner for that package.

    \b
    Example:
      edgebert corpus build --out corpus/
      edgebert tokenizer train --corpus corpus/ --vocab-size 8000 --out tok/
    """
    from pathlib import Path

    from edgebert.stages.pretrain.corpus import build_debian

    build_debian(Path(out), packages.split(",") if packages else None, log=click.echo)


@main.group()
def tokenizer():
    """WordPiece (BERT) and byte-level BPE (RoBERTa) tokenizers."""


@tokenizer.command("train")
@_dataclass_options(TokenizerConfig, required=("corpus", "out"))
def tokenizer_train(**options):
    """Train a WordPiece vocabulary with BERT normalisation and special tokens, or a
    byte-level BPE one as RoBERTa's.

    \b
    Example:
      edgebert tokenizer train --corpus corpus/ --vocab-size 8000 --out tok/
      edgebert tokenizer train --corpus corpus/ --kind bpe --out tok-bpe/
      edgebert pretrain --corpus corpus/ --tokenizer tok-bpe/ --arch roberta --out runs/r
    """
    from pathlib import Path

    from edgebert.stages.pretrain.tokenizer import train_tokenizer

    cfg = _pick(TokenizerConfig, options)
    train_tokenizer(Path(cfg.corpus), Path(cfg.out), cfg.vocab_size, cfg.lowercase,
                    cfg.strip_accents, cfg.min_frequency, kind=cfg.kind, log=click.echo)




@main.command("arm-env")
@click.option("--check", "artifact", default=None,
              help="An INT8/ONNX, OpenVINO IR or ExecuTorch (.pte) artifact to run under "
                   "emulation and compare with x86.")
@click.option("--examples", default=64, show_default=True,
              help="Dev examples to compare (0: the whole dev split).")
def arm_env(artifact, examples):
    """Build (once) aarch64 runtimes under qemu, and check arm64 artifacts with them.

    Needs qemu-user-static and debootstrap (apt-get install qemu-user-static
    debootstrap); about 400 MB in the cache and a minute to build, for ONNX Runtime.
    Where openvino is installed, its aarch64 wheel is added (170 MB): OpenVINO has an ARM
    CPU plugin, so the chain's OpenVINO artifacts are then checked on arm64 too. A .pte
    runs in ExecuTorch's C++ runtime, which this command cross-compiles against the
    aarch64 wheel of the installed executorch where g++-aarch64-linux-gnu is installed
    (12 MB more). It checks outputs only: emulated time is 80-300x slower than a device,
    never a latency.

    \b
    Examples:
      edgebert arm-env
      edgebert arm-env --check runs/rt/int8/arm64
      edgebert arm-env --check runs/rt/int8/openvino-int8
      edgebert arm-env --check runs/rt/export/executorch --examples 0
    """
    from edgebert.targets.arm64 import (build, build_pte_runner, fetch_openvino,
                                        installed_version, pte_buildable)

    click.echo(f"arm64 environment: {build(log=click.echo)}")
    if installed_version("openvino") is None:
        click.echo("OpenVINO: openvino not installed; OpenVINO artifacts are not checked")
    else:
        try:
            click.echo(f"OpenVINO: {fetch_openvino(log=click.echo)}")
        except UserError as e:
            click.echo(f"OpenVINO: not fetched ({e}); OpenVINO artifacts are not checked")
    why = pte_buildable()
    click.echo(f"ExecuTorch runner: {build_pte_runner(log=click.echo)}" if why is None else
               f"ExecuTorch runner: not built ({why}); .pte artifacts are not checked")
    if artifact:
        from edgebert.artifacts_io import open_artifact
        from edgebert.formats import open_model, require_model_file
        from edgebert.targets.check import (arm64_parity, openvino_arm64_parity,
                                            pte_arm64_parity)

        opened = open_artifact(artifact)
        model, fmt = require_model_file(artifact, ("model.onnx", "model.xml", "model.pte"),
                                        "to check")
        if fmt == "executorch":
            if why:
                raise UserError(f"{artifact}: a .pte runs under emulation in ExecuTorch's C++ "
                                f"runtime, and it cannot be built here ({why})")
            runner, _ = open_model(model, record=opened.record)
            res = pte_arm64_parity(model, opened, runner, examples)
        elif fmt == "openvino":
            res = openvino_arm64_parity(model, opened, opened.record.get("inference_precision"),
                                        examples)
        else:
            res = arm64_parity(model, opened, examples)
        click.echo(json.dumps(res, indent=2))
        if res["top1_agreement"] < 1.0:
            raise UserError(f"{artifact}: aarch64 and x86 disagree on "
                            f"{1 - res['top1_agreement']:.1%} of predictions")


@main.group()
def sources():
    """Packaged models and data: list them, fetch them into the cache."""


@sources.command("list")
def sources_list():
    """Show the packaged assets, where they come from, and whether they are cached."""
    from edgebert.sources import ASSETS, cache_dir, is_cached

    click.echo(f"cache: {cache_dir()}  (set EDGEBERT_CACHE to move it)")
    for a in ASSETS.values():
        state = "cached" if is_cached(a) else "not fetched"
        click.echo(f"{a.name:<16} {a.kind:<6} {a.package}=={a.version:<8} {state:<12} "
                   f"{a.description}")
    from edgebert.data.tasks import PACKAGED, packaged_metric

    click.echo("tasks (--task NAME):")
    for name, kind_name in PACKAGED.items():
        click.echo(f"  {name:<16} {kind_name:<16} dev metric {packaged_metric(name)}")


@sources.command("fetch")
@click.argument("names", nargs=-1)
def sources_fetch(names):
    """Download, verify (sha256) and unpack packaged assets; all of them by default.

    \b
    Offline: put the wheels in a folder and set EDGEBERT_WHEELHOUSE to it.
    """
    from edgebert.sources import ASSETS, fetch

    for name in names or ASSETS:
        if name not in ASSETS:
            raise UserError(f"'{name}' is not a packaged asset; known: {', '.join(ASSETS)}")
        click.echo(f"{name}: {fetch(ASSETS[name])}")


BY_HAND = ("finetune", "distill", "distill-general")
"""Stages whose command is written above: finetune's task options are spelled for the
command line, and `distill` runs distill-general where --corpus is given."""
for _stage in STAGES.values():
    if _stage.name not in BY_HAND:
        main.add_command(_stage_command(_stage))


if __name__ == "__main__":
    main()
