"""The argument parser of ``prune-gym``: one sub-command per job, each bound to its handler."""

from __future__ import annotations

import argparse

from prune_gym.cli import commands as handlers
from prune_gym.cli.listings import LISTINGS, list_command
from prune_gym.cli.options import DEFAULTS
from prune_gym.runs import WANDB_MODES

TRUST_CODE = ("import the module:attribute and file.py:attribute names the run folder holds (task, agent, reward, ...): "
              "only for folders you trust")


def add_executor_options(parser: argparse.ArgumentParser, ray_only: bool = False) -> None:
    """--workers, --ray [ADDRESS], --cpus-per-run, --gpus-per-run: where the runs of a command go."""
    parser.add_argument("--workers", type=int, default=None,
                        help="trials at once (default: as many as Ray's resources allow)" if ray_only else
                        "runs at once: processes on this machine (default 1), or with --ray at most this many Ray tasks")
    parser.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                        help="the Ray cluster to join (HOST:PORT, ray://HOST:PORT, auto; default: a local instance)" if ray_only else
                        "run on Ray: alone, a local instance on this machine; with ADDRESS (HOST:PORT, ray://HOST:PORT, auto), a cluster")
    parser.add_argument("--cpus-per-run", type=float, default=None, help="CPUs (torch threads) each run asks Ray for (default 1)")
    parser.add_argument("--gpus-per-run", type=float, default=None,
                        help="GPUs each run asks Ray for, placed on the cuda device Ray assigns (default 0; 0.5 shares one)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``prune-gym`` (one sub-command per job)."""
    parser = argparse.ArgumentParser(prog="prune-gym", description="A reinforcement-learning gym for CNN filter pruning.")
    commands = parser.add_subparsers(dest="command", required=True)

    pretrain = commands.add_parser("pretrain", help="train a task's model and cache its checkpoint")
    pretrain.add_argument("task", help="task name (see `prune-gym list tasks`)")
    pretrain.add_argument("--epochs", type=int, default=None, help="override the task's number of epochs")
    pretrain.add_argument("--retrain", action="store_true", help="train again even if a checkpoint exists")
    pretrain.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    pretrain.add_argument("--quiet", action="store_true", help="no progress bar")
    pretrain.set_defaults(handler=handlers.pretrain)

    checkpoint = commands.add_parser("checkpoint", help="export, import or fingerprint a task's pretrained checkpoint")
    checkpoint.add_argument("action", choices=["export", "import", "sha256"])
    checkpoint.add_argument("task", help="task name")
    checkpoint.add_argument("file", nargs="?", help="the file to write (export) or read (import)")
    checkpoint.set_defaults(handler=handlers.checkpoint)

    benchmark = commands.add_parser("benchmark", help="score an agent on a versioned suite over seeds (resumable)")
    benchmark.add_argument("--agent", required=True, help="agent name (`prune-gym list agents`), or sb3:ALGO / tianshou:ALGO")
    benchmark.add_argument("--suite", required=True, help="suite name (`prune-gym list suites`)")
    benchmark.add_argument("--out", required=True, help="results folder (one per suite, agent and hyper-parameters)")
    benchmark.add_argument("--entries", nargs="+", default=None, metavar="ENTRY",
                           help="run these entries of the suite only (names as `prune-gym list suites` shows them, e.g. "
                                "cnn5-digits/LayerRate-0.5); default: every entry")
    benchmark.add_argument("--seeds", nargs="*", default=None, metavar="SEEDS",
                           help="seeds or ranges, e.g. 0-4 or 0 3 7 (default: the suite's)")
    benchmark.add_argument("--agent-arg", action="append", default=[], metavar="KEY=VALUE", help="agent hyper-parameter")
    benchmark.add_argument("--agent-config", default=None, metavar="FILE",
                           help="JSON or YAML file of agent hyper-parameters for every entry (e.g. tune's best_config.json)")
    benchmark.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE",
                           help="replace a suite's environment keyword, VALUE read as JSON where it parses (e.g. criterion=std for a "
                                "uniform baseline; the reward's keyword arguments: 'reward_kwargs={\"penalty\": 2}')")
    add_executor_options(benchmark)
    benchmark.add_argument("--storage", default=None, metavar="PATH",
                           help="where the run folders are written, a path every Ray worker sees (default: --out)")
    benchmark.add_argument("--cache", default=None, metavar="DIR",
                           help="recovered networks and entry references, shareable by benchmarks of one suite "
                                "(default: STORAGE/cache)")
    benchmark.add_argument("--zero-shot", action="store_true",
                           help="transfer suites: the trained agent plays one deterministic episode per held-out entry "
                                "(default: it learns for the entry's few-shot evaluations)")
    benchmark.add_argument("--trained", default=None, metavar="DIR",
                           help="transfer suites: where the agent's training on the train pairs is kept, one folder per seed "
                                "(default OUT/trained; give the zero-shot and few-shot benchmarks the same one)")
    benchmark.add_argument("--device", default="cpu")
    benchmark.add_argument("--quiet", action="store_true")
    benchmark.set_defaults(handler=handlers.benchmark)

    tune = commands.add_parser("tune", help="tune an agent's hyper-parameters on a suite's entries with Ray Tune (TPE + ASHA), "
                                            "on tuning seeds disjoint from the benchmark's")
    tune.add_argument("--agent", required=True)
    tune.add_argument("--suite", required=True)
    tune.add_argument("--trials", type=int, required=True, help="configurations to try (the same for every agent compared)")
    tune.add_argument("--space", required=True, metavar="YAML",
                      help="search space: NAME: {uniform|loguniform|randint: [LOW, HIGH]} or NAME: {choice: [V1, V2, ...]}")
    tune.add_argument("--tuning-seeds", nargs="*", default=None, metavar="SEEDS",
                      help="seeds or ranges of the tuning searches, disjoint from the suite's (default: 100-101)")
    tune.add_argument("--metric", choices=["normalised", "proxy"], default="normalised",
                      help="best-so-far reward-split score, normalised per entry (default) or raw")
    tune.add_argument("--grace-period", type=int, default=None, metavar="EPISODES",
                      help="episodes before ASHA may stop a trial (default: a quarter of a search)")
    tune.add_argument("--seed", type=int, default=0, help="seed of the TPE sampler (default 0)")
    tune.add_argument("--out", required=True, help="folder for best_config.json and tuning.json")
    tune.add_argument("--storage", default=None, metavar="PATH",
                      help="where the trials' run folders and Tune's records go, a path every Ray worker sees (default: --out)")
    add_executor_options(tune, ray_only=True)
    tune.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE",
                      help="replace a suite's environment keyword, VALUE read as JSON where it parses (the reward's keyword "
                           "arguments: 'reward_kwargs={\"penalty\": 2}')")
    tune.add_argument("--device", default="cpu")
    tune.add_argument("--quiet", action="store_true")
    tune.set_defaults(handler=handlers.tune)

    fidelity = commands.add_parser("fidelity", help="measure how well the search reward predicts the score after fine-tuning")
    fidelity.add_argument("--suite", required=True)
    fidelity.add_argument("--entry", action="append", default=None, help="entry name (default: every entry of the suite)")
    fidelity.add_argument("--out", required=True, help="folder for fidelity-<entry>.json and the recovery cache")
    fidelity.add_argument("--option", action="append", default=[], metavar="KEY=V1,V2",
                          help="reward-protocol values to compare, e.g. bn_recalibration=0,100 (all combinations are measured)")
    fidelity.add_argument("--random", type=int, default=24, help="budget-feasible random candidates (default 24)")
    fidelity.add_argument("--runs", nargs="*", default=[], metavar="RUN", help="run folders whose best episodes join the candidates")
    fidelity.add_argument("--device", default="cpu")
    fidelity.set_defaults(handler=handlers.fidelity)

    leaderboard = commands.add_parser("leaderboard", help="render benchmark results folders of one suite as a markdown table")
    leaderboard.add_argument("folders", nargs="+", metavar="DIR",
                             help="benchmark results folders, or their results.json files; of several (results/*), folders "
                                  "without results.json (a --cache folder) are skipped with a note")
    leaderboard.add_argument("--output", default=None, help="write the markdown here (default: print it)")
    leaderboard.add_argument("--plots", default=None, metavar="FOLDER", help="write rliable's figures (PNG and PDF) here")
    leaderboard.add_argument("--fidelity", nargs="*", default=[], metavar="FILE", help="fidelity-*.json files to add as a table")
    leaderboard.set_defaults(handler=handlers.leaderboard)

    search = commands.add_parser("search", help="search a pruned network with an agent; writes a run folder")
    search.add_argument("--task", help=f"task name (`prune-gym list tasks`; default {DEFAULTS['task']})")
    search.add_argument("--env", help=f"environment id (`prune-gym list environments`; default {DEFAULTS['env']})")
    search.add_argument("--agent", help="agent name (`prune-gym list agents`), sb3:ALGO / tianshou:ALGO, or a class of yours as "
                                        f"package.module:Class or path/to/file.py:Class (default {DEFAULTS['agent']})")
    search.add_argument("--reward", help="reward name (`prune-gym list rewards`), package.module:function or path/to/file.py:function "
                                         "(default: the environment's); "
                                         "its keyword arguments: --env-arg 'reward_kwargs={\"name\": value}'")
    search.add_argument("--macs-budget", type=float, help="fraction of the original MACs to keep (default: the environment's, 0.5)")
    search.add_argument("--params-budget", type=float,
                        help="fraction of the original parameters to keep (default 1.0: none; AMC's model-size mode with "
                             "--macs-budget 1)")
    search.add_argument("--episodes", type=int, help=f"episodes to run (default {DEFAULTS['episodes']}); with --resume, "
                                                     "more extends a finished run")
    search.add_argument("--max-evaluations", type=int, metavar="N",
                        help="also stop once N reward evaluations are spent, within an episode too (as the benchmark does)")
    search.add_argument("--seed", type=int, help=f"seed of the agent and the environment (default {DEFAULTS['seed']})")
    search.add_argument("--reward-samples", type=int, help="reward-split images to score on (default: the environment's)")
    search.add_argument("--device", help="torch device (default: the environment's, cpu)")
    search.add_argument("--wandb", choices=WANDB_MODES,
                        help="wandb mode (default: disabled; offline writes a run to sync later with `wandb sync`)")
    search.add_argument("--wandb-project", help=f"wandb project (default: {DEFAULTS['wandb_project']})")
    search.add_argument("--wandb-entity", help="wandb entity (team or user)")
    search.add_argument("--wandb-group", help="wandb group (default: task, env, budget, reward)")
    search.add_argument("--wandb-tags", nargs="*", default=[], metavar="TAG", help="extra wandb tags (agent and seed are added)")
    search.add_argument("--tensorboard", metavar="DIR", help="also write TensorBoard event files, in DIR/<agent>-s<seed>-<run id> "
                                                             "(`tensorboard --logdir DIR`); SB3 agents add their own train/ logs")
    search.add_argument("--checkpoint-every", type=int, metavar="EPISODES",
                        help=f"save the agent every this many episodes (default: {DEFAULTS['checkpoint_every']})")
    search.add_argument("--run-dir", default=None, help="run folder (default: runs/<task>-<env>-<agent>-s<seed>-<time>)")
    search.add_argument("--trust-code", action="store_true", help=f"with --resume: {TRUST_CODE}")
    search.add_argument("--resume", metavar="RUN", default=None,
                        help="continue a run folder as it was specified (with --episodes N: extend it to N episodes)")
    search.add_argument("--env-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment keyword, VALUE read as JSON where it parses (e.g. criterion=std; the reward's "
                             "keyword arguments: 'reward_kwargs={\"penalty\": 2}' with --reward budget-penalty)")
    search.add_argument("--agent-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="agent keyword (over --agent-config's)")
    search.add_argument("--agent-config", default=None, metavar="FILE",
                        help="YAML or JSON file of agent hyper-parameters per task, as rl-zoo3's hyperparams/*.yml: "
                             "TASK: {KEY: VALUE} sections over a 'default' one (a file without sections applies to every task)")
    search.add_argument("--quiet", action="store_true", help="no progress bar")
    search.add_argument("--seeds", nargs="*", default=None, metavar="SEEDS",
                        help="search once per seed (e.g. 0-4, or 0 3 7), one run folder per seed: --run-dir RUN gives RUN/seed-N")
    add_executor_options(search)
    search.set_defaults(handler=handlers.search)

    recover = commands.add_parser("recover", help="one-step recovery: train a run's best pruned network once more, report test "
                                                  "score and latency")
    recover.add_argument("run")
    recover.add_argument("--epochs", type=int, default=5)
    recover.add_argument("--device", default="cpu")
    recover.add_argument("--quiet", action="store_true")
    recover.add_argument("--trust-code", action="store_true", help=TRUST_CODE)
    recover.set_defaults(handler=handlers.recover)

    export = commands.add_parser("export", help="write a run's best pruned network (state dict + mask)")
    export.add_argument("run")
    export.add_argument("--output", default=None)
    export.add_argument("--trust-code", action="store_true", help=TRUST_CODE)
    export.set_defaults(handler=handlers.export)

    plot = commands.add_parser("plot", help="draw runs' learning curves and score-vs-MACs Pareto fronts (PNG and PDF)",
                               description="Runs that differ only in their seed are one group: mean and 95%% CI across seeds.")
    plot.add_argument("runs", nargs="+", metavar="RUN", help="run folders (of one task, environment, MACs budget and reward)")
    plot.add_argument("--output", default=None, metavar="DIR", help="where to write the figures (default: the run folder for one run, "
                                                                     "else ./plots)")
    plot.set_defaults(handler=handlers.plot)

    listing = commands.add_parser("list", help="list registered tasks, environments, models, datasets, rewards, observations, "
                                               "criteria, agents or suites, with one-line descriptions")
    listing.add_argument("what", choices=LISTINGS)
    listing.set_defaults(handler=list_command)
    return parser
