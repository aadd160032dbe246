"""Strategy parameters, the registry and the module contract every strategy keeps."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from tradelab import strategies
from tradelab.strategies import keltner_breakout, ma_crossover, momentum
from tradelab.strategies.contract import StrategyContractError, check_module
from tradelab.strategies.types import BAR, BOOK, QUOTE

ALL = strategies.names()


def test_registry_lists_every_strategy_and_names_the_known_ones_on_a_miss():
    assert ALL == [
        "funding_carry",
        "imbalance_microprice",
        "keltner_breakout",
        "ma_crossover",
        "market_making",
        "mean_reversion",
        "momentum",
        "ofi_reversion",
        "volatility_breakout",
    ]
    assert strategies.get("momentum") is momentum
    with pytest.raises(KeyError, match="unknown strategy 'nope'; known: funding_carry"):
        strategies.get("nope")


@pytest.mark.parametrize("name", ALL)
def test_every_module_keeps_the_contract(name):
    m = strategies.get(name)
    assert m.NAME == name and m.KIND in (BAR, BOOK, QUOTE)
    for attr in ("Params", "init_state_nb", "init_state", "step", "run_nb", "grid_nb", "run",
                 "grid", "INPUTS"):
        assert hasattr(m, attr), attr
    assert m.__doc__ and "Rule" in m.__doc__, "the module docstring states the rule"
    P = m.Params
    assert P.strategy == name
    # each parameter slot constant is the field's position in the vector the kernels read
    for f in P.names():
        assert getattr(m, f.upper()) == P.slot(f), f
    defaults = P()
    assert np.array_equal(P.from_array(defaults.to_array()).to_array(), defaults.to_array())
    for f, (low, high) in P.bounds().items():
        assert low <= getattr(defaults, f) <= high
    # the grid form is parallel over sets, the others are not
    assert m.grid_nb.targetoptions.get("parallel") is True
    assert not m.run_nb.targetoptions.get("parallel")


@pytest.mark.parametrize("name", ALL)
def test_step_kernels_hold_no_allocation(name):
    # the step is called once per input by live runners: no arrays may be created in it
    src = inspect.getsource(strategies.get(name).step)
    calls = {
        n.func.attr
        for n in ast.walk(ast.parse(src))
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
    }
    assert not calls & {"empty", "zeros", "ones", "full", "array", "copy", "append"}


def test_params_validate_with_the_field_named():
    P = keltner_breakout.Params
    assert P().to_array().tolist() == [20.0, 10.0, 2.0, 1.0]
    assert P.bounds()["k"] == (0.1, 10.0)
    assert isinstance(P(ema_period=30.0).ema_period, int)
    with pytest.raises(ValueError, match=r"keltner_breakout: ema_period=1 must be an integer in "
                                         r"\[2, 1000\]"):
        P(ema_period=1)
    with pytest.raises(ValueError, match="ema_period=2.5 must be an integer"):
        P(ema_period=2.5)
    with pytest.raises(ValueError, match=r"k=nan must be in \[0.1, 10\]"):
        P(k=float("nan"))
    with pytest.raises(TypeError, match="k must be a number"):
        P(k="2")
    with pytest.raises(ValueError, match="fast < slow is required"):
        ma_crossover.Params(fast=50, slow=50)
    with pytest.raises(dataclasses.FrozenInstanceError):
        P().k = 3.0


def test_grid_is_the_cartesian_product_last_field_fastest():
    P = keltner_breakout.Params
    g = P.grid(ema_period=[10, 20], k=[1.0, 2.0, 3.0])
    assert g.shape == (6, 4) and g.flags.c_contiguous and g.dtype == np.float64
    assert g[:, 0].tolist() == [10, 10, 10, 20, 20, 20]
    assert g[:, 2].tolist() == [1.0, 2.0, 3.0] * 2
    assert (g[:, 1] == 10).all() and (g[:, 3] == 1).all()  # defaults elsewhere
    df = P.frame(g)
    assert list(df.columns) == list(P.names()) and df["ema_period"].dtype == np.int64
    with pytest.raises(KeyError, match="has no parameter 'window'; it has ema_period"):
        P.grid(window=[5])
    with pytest.raises(ValueError, match=r"k=20 \(parameter set 1\) must be in"):
        P.grid(k=[2.0, 20.0])
    with pytest.raises(ValueError, match="fast_bars < mid_bars < slow_bars"):
        momentum.Params.grid(mid_bars=[5, 20])
    with pytest.raises(ValueError, match=r"shape \(n_sets, 4\)"):
        P.validate(np.zeros((3, 5)))


def test_describe_lists_meaning_and_bounds():
    d = keltner_breakout.Params.describe()
    assert d.loc["k", "low"] == 0.1 and "ATR" in d.loc["k", "doc"]


def test_features_and_strategies_import_only_the_ground_floor():
    # features may use the ground floor (tradelab.core, tradelab.errors; the store's shared
    # types moved to core); strategies may use features and the ground floor; nothing else
    # (tests/test_layering.py holds the whole house to DESIGN.md)
    import pathlib

    root = pathlib.Path(strategies.__file__).resolve().parents[1]
    ground = {"tradelab.core", "tradelab.errors", "tradelab.store"}
    allowed = {"features": {"tradelab.features", *ground},
               "strategies": {"tradelab.features", "tradelab.strategies", *ground}}
    for pkg, ok in allowed.items():
        for path in (root / pkg).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module:
                    mods = [node.module]
                elif isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                else:
                    continue
                for mod in mods:
                    if mod.startswith("tradelab"):
                        assert any(mod == a or mod.startswith(a + ".") for a in ok), (path, mod)


def test_numba_cache_is_cleared_when_an_inlined_source_changes(tmp_path):
    from tradelab.core.numba_cache import STAMP, clear_if_stale

    pkg, dep = tmp_path / "pkg", tmp_path / "dep"
    (pkg / "__pycache__").mkdir(parents=True)
    dep.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "kern.py").write_text("x = 1\n")
    (dep / "steps.py").write_text("y = 1\n")
    cache = pkg / "__pycache__"
    kept = cache / "kern.cpython-311.pyc"
    kept.write_text("")

    def stale_kernel():
        f = cache / "kern.run_nb-10.py311.nbi"
        f.write_text("")
        return f

    f = stale_kernel()
    assert clear_if_stale(pkg, [dep]) and not f.exists() and (cache / STAMP).exists()
    f = stale_kernel()
    assert not clear_if_stale(pkg, [dep]) and f.exists()  # nothing changed: the cache stays
    (dep / "steps.py").write_text("y = 2\n")  # an inlined dependency changed
    assert clear_if_stale(pkg, [dep]) and not f.exists() and kept.exists()


# -- the contract, checked by the registry --------------------------------------------------------

STRATEGIES_DIR = Path(strategies.__file__).resolve().parent


def _defines_a_strategy(path: Path) -> bool:
    """A module that assigns NAME and KIND at top level, or defines a step kernel."""
    tree = ast.parse(path.read_text())
    assigned = {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
                if isinstance(t, ast.Name)}
    funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    return {"NAME", "KIND"} <= assigned or "step" in funcs


def test_every_strategy_module_in_the_package_is_registered():
    found = sorted(p.stem for p in STRATEGIES_DIR.glob("*.py") if _defines_a_strategy(p))
    assert found == ALL
    # and the plumbing modules are not mistaken for strategies
    assert not {"base", "contract", "params", "registry", "types"} & set(found)


def _copy_of(name: str, **changes) -> types.ModuleType:
    src = strategies.get(name)
    fake = types.ModuleType(f"tradelab.strategies.{name}")
    fake.__dict__.update({k: v for k, v in vars(src).items() if not k.startswith("__")})
    for k, v in changes.items():
        if v is None:
            delattr(fake, k)
        else:
            setattr(fake, k, v)
    return fake


def test_the_contract_check_names_the_module_and_the_member():
    for name in ALL:
        check_module(strategies.get(name))  # every registered module passes
    with pytest.raises(StrategyContractError,
                       match=r"tradelab.strategies.momentum lacks grid_nb, INPUTS|"
                             r"tradelab.strategies.momentum lacks INPUTS, grid_nb"):
        check_module(_copy_of("momentum", grid_nb=None, INPUTS=None))
    with pytest.raises(StrategyContractError, match="momentum: KIND is 'tick'"):
        check_module(_copy_of("momentum", KIND="tick"))
    with pytest.raises(StrategyContractError, match="NAME is 'mom', expected the module's name"):
        check_module(_copy_of("momentum", NAME="mom"))
    # a step that reads an extra column: the arity no longer matches INPUTS
    with pytest.raises(StrategyContractError,
                       match=r"ma_crossover: step takes 3 arguments, expected 4"):
        check_module(_copy_of("ma_crossover", INPUTS=("close", "volume")))
    # a plain Python function where a cached numba kernel belongs
    with pytest.raises(StrategyContractError, match="run_nb is not a numba kernel"):
        check_module(_copy_of("ma_crossover", run_nb=lambda p, s, close, out: None))
    with pytest.raises(StrategyContractError, match="Params.strategy is 'keltner_breakout'"):
        check_module(_copy_of("ma_crossover", Params=keltner_breakout.Params))


def test_the_registry_refuses_a_module_that_breaks_the_contract(monkeypatch):
    from tradelab.strategies import registry

    broken = _copy_of("momentum", step=None)
    monkeypatch.setitem(sys.modules, "tradelab.strategies.momentum", broken)
    monkeypatch.setattr(registry, "_CHECKED", set())
    with pytest.raises(StrategyContractError, match="tradelab.strategies.momentum lacks step"):
        strategies.get("momentum")


def test_a_quote_strategy_quotes_around_the_microprice_from_a_book_frame():
    """market_making (kind quote): bid 100 x 1, ask 101 x 3 (two levels, the second ignored):
    microprice (100 x 3 + 101 x 1) / 4 = 100.25; 10 bps either side at a flat position."""
    from tradelab.features.api import BookFrame

    m = strategies.get("market_making")
    frame = BookFrame(np.array([1, 2], dtype=np.int64),
                      np.array([[100.0, 99.0, 1.0, 5.0, 101.0, 102.0, 3.0, 5.0],
                                [100.0, 99.0, 0.0, 5.0, 101.0, 102.0, 0.0, 5.0]]))
    q = m.run(frame, m.Params(half_spread_bps=10.0, skew_bps=0.0))
    assert q[0].tolist() == pytest.approx([100.25 * 0.999, 100.25 * 1.001])
    assert np.isnan(q[1]).all()  # no size on either side: no quotes
    g = m.grid(frame, m.Params.grid(half_spread_bps=[10.0, 20.0], skew_bps=[0.0]))
    assert g.shape == (2, 2, 2) and g[1, 0, 1] == pytest.approx(100.25 * 1.002)
