"""Kuhn and Leduc poker against OpenSpiel: rules, payoffs, information states, strategies.

Every betting sequence of every deal is played in the token game (``opening_from`` and
``game_lib.step`` in one jitted, vmapped scan per game) and in OpenSpiel, compared at
every step. The same pass reads each strategy's probabilities at every decision, from
which the tests build OpenSpiel tabular policies and exact expected payoffs.
"""

import fractions
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pyspiel
import pytest
from open_spiel.python import policy as policy_lib
from open_spiel.python.algorithms import exploitability

from twoplayer_jax import game as game_lib
from twoplayer_jax import games, players, rollout, vocab
from twoplayer_jax.games import kuhn_poker, leduc_poker

MODULES = {"kuhn_poker": kuhn_poker, "leduc_poker": leduc_poker}
NAMES = sorted(MODULES)


def strategies(name):
  """The strategies the registered scripted players play, by name; "average" is the
  expert's mixed with random at the registered default error rate, 0.2."""
  s = dict(MODULES[name].STRATEGIES)
  s["average"] = kuhn_poker.mixed(s[played_strategy(name, "expert")], s["random"], 0.2)
  return s


def played_strategy(name, player):
  """The strategy (a key of ``strategies``) of a registered scripted player."""
  expert = "equilibrium" if name == "kuhn_poker" else "heuristic"
  return {"human": "heuristic", "expert": expert, "noisy": "random"}.get(player, player)


def betting_sequences(spiel_game, deal):
  """Every terminal sequence of betting actions of OpenSpiel's game for one deal."""
  state = spiel_game.new_initial_state()
  for card in deal[:2]:
    state.apply_action(int(card))
  out = []

  def walk(state, seq):
    if state.is_terminal():
      out.append(seq)
    elif state.is_chance_node():
      child = state.clone()
      child.apply_action(int(deal[2]))
      walk(child, seq)
    else:
      for a in state.legal_actions():
        child = state.clone()
        child.apply_action(a)
        walk(child, seq + [a])

  walk(state, [])
  return out


@functools.partial(jax.jit, static_argnums=(0,))
def drive(name, hidden, actions):
  """Plays the games ``actions [N, K]`` (OpenSpiel's betting actions, -1 padded) of the
  deals ``hidden [N]``: at a decision the next action's token, elsewhere the only legal
  token. Returns the final states and per-step records ``[N, S, ...]``."""
  g, mod = games.make(name), MODULES[name]
  action_tokens = jnp.asarray(mod.ACTIONS)
  strategy_fns = strategies(name)

  def one(hidden, actions):
    def body(carry, _):
      state, i = carry
      mask = g.legal_mask(state)
      decision = jnp.any(mask[action_tokens]) & ~state.done
      a = jnp.maximum(actions[jnp.minimum(i, actions.shape[0] - 1)], 0)
      token = jnp.where(decision, action_tokens[a], jnp.argmax(mask))
      probs = {k: jnp.stack([fn(g, game_lib.seen_by(state, seat), seat) for seat in (1, 2)])
               for k, fn in strategy_fns.items()}
      record = dict(decision=decision, legal=mask[action_tokens], num_legal=jnp.sum(mask),
                    pad_or_bos=mask[vocab.PAD] | mask[vocab.BOS], to_move=state.to_move,
                    done=state.done, token=token, tokens=state.tokens, length=state.length,
                    betting=mod.betting(state), probs=probs)
      state, _ = game_lib.step(g, state, token)
      return (state, i + decision), record

    start = g.opening_from(hidden)
    steps = g.max_length - g.max_opening_length + 1
    (final, _), records = jax.lax.scan(body, (start, jnp.int32(0)), None, length=steps)
    return final, records

  return jax.vmap(one)(hidden, actions)


class Played:
  """Every betting sequence of every deal of one game, played in both implementations."""

  def __init__(self, name):
    self.name, self.mod = name, MODULES[name]
    self.game = games.make(name)
    self.spiel = pyspiel.load_game(name)
    hidden, probs = self.game.chance_outcomes()
    self.deal_hidden, self.deal_probs = hidden, probs
    publics = hidden.get("public", np.zeros_like(hidden["one"]["card"]))
    self.deals = np.stack([hidden["one"]["card"], hidden["two"]["card"], publics], 1)
    index, seqs = [], []
    for d, deal in enumerate(self.deals):
      for seq in betting_sequences(self.spiel, deal):
        index.append(d)
        seqs.append(seq)
    self.deal_index = np.array(index)
    self.sequences = seqs
    width = max(map(len, seqs))
    actions = np.full((len(seqs), width), -1, np.int32)
    for i, seq in enumerate(seqs):
      actions[i, :len(seq)] = seq
    game_hidden = jax.tree.map(lambda x: x[self.deal_index], hidden)
    final, records = drive(name, game_hidden, actions)
    self.final = jax.device_get(final)
    self.rec = jax.device_get(records)
    self.hidden = jax.tree.map(np.asarray, game_hidden)
    # [2, N, private_length] each seat's private text in each game.
    self.private = np.stack([np.asarray(jax.vmap(self.game.private, in_axes=(0, None))(
        game_hidden, seat)) for seat in (1, 2)])


@functools.lru_cache(maxsize=None)
def get_played(name):
  return Played(name)


@pytest.fixture(scope="module", params=NAMES)
def played(request):
  return get_played(request.param)


def card_of(hidden, i, seat):
  return int(hidden["one" if seat == 1 else "two"]["card"][i])


def test_rules_payoffs_and_information_states_agree_with_openspiel(played):
  """Every deal and betting sequence: the player to move, the legal actions, both seats'
  information states, chance's public card, termination right after the last action and
  the returns, exactly; and token views map one to one to OpenSpiel's information states."""
  p, rec, mod = played, played.rec, played.mod
  leduc = p.name == "leduc_poker"
  to_string, to_view = {}, {}
  covered = set()
  for i, seq in enumerate(p.sequences):
    deal = p.deals[p.deal_index[i]]
    covered.add(tuple(deal))
    s = p.spiel.new_initial_state()
    s.apply_action(int(deal[0]))
    s.apply_action(int(deal[1]))
    k = 0
    for t in range(rec["done"].shape[1]):
      if rec["done"][i, t]:
        break
      assert not rec["pad_or_bos"][i, t]
      if rec["decision"][i, t]:
        assert not s.is_chance_node() and not s.is_terminal()
        assert s.current_player() == rec["to_move"][i, t] - 1
        assert list(np.flatnonzero(rec["legal"][i, t])) == s.legal_actions()
        assert rec["num_legal"][i, t] == len(s.legal_actions())
        b = type(rec["betting"])(*(x[i, t] for x in rec["betting"]))
        for seat in (1, 2):
          card = card_of(p.hidden, i, seat)
          ours = mod.information_state_string(b, card, seat)
          assert ours == s.information_state_string(seat - 1), (i, t, seat)
        seat = int(rec["to_move"][i, t])
        string = s.information_state_string(seat - 1)
        view = (seat, tuple(p.private[seat - 1, i]),
                tuple(rec["tokens"][i, t, :rec["length"][i, t]].tolist()))
        assert to_string.setdefault(view, string) == string
        assert to_view.setdefault(string, view) == view
        s.apply_action(seq[k])
        k += 1
      else:  # A forced token: end-of-turn, or Leduc's public card when chance deals it.
        assert rec["num_legal"][i, t] == 1
        token = int(rec["token"][i, t])
        if token == vocab.EOT:
          assert leduc or not s.is_chance_node()
        else:
          assert leduc and s.is_chance_node() and token == mod.CARDS[deal[2]]
          s.apply_action(int(deal[2]))
    assert k == len(seq) and s.is_terminal() and bool(p.final.done[i])
    last = p.final.tokens[i, p.final.length[i] - 1]
    assert last == mod.ACTIONS[seq[-1]]  # Decided right after the last action.
    np.testing.assert_array_equal(p.final.returns[i], np.asarray(s.returns(), np.float32))
  assert covered == set(map(tuple, p.deals))
  assert len(to_string) == len(to_view) == {"kuhn_poker": 12, "leduc_poker": 936}[p.name]


def test_python_helpers_read_histories_and_information_states(played):
  """``history`` and ``information_state`` on states stepped one token at a time."""
  p, mod = played, played.mod
  step = jax.jit(functools.partial(game_lib.step, p.game))
  mask = jax.jit(p.game.legal_mask)
  rng = np.random.default_rng(0)
  for i in rng.choice(len(p.sequences), 12, replace=False):
    deal, seq = p.deals[p.deal_index[i]], p.sequences[i]
    state = p.game.opening_from(jax.tree.map(lambda x: x[i], p.hidden))
    s = p.spiel.new_initial_state()
    s.apply_action(int(deal[0]))
    s.apply_action(int(deal[1]))
    k = 0
    while not bool(state.done):
      legal = np.asarray(mask(state))
      if legal[list(mod.ACTIONS)].any():
        assert mod.history(state) == seq[:k]
        for seat in (1, 2):
          assert mod.information_state(state, seat) == s.information_state_string(seat - 1)
        token = mod.ACTIONS[seq[k]]
        s.apply_action(seq[k])
        k += 1
      else:
        token = int(np.argmax(legal))
        if s.is_chance_node():
          s.apply_action(int(deal[2]))
      state, _ = step(state, jnp.int32(token))
    assert mod.history(state) == seq


def test_private_text_shows_only_the_seats_own_card(played):
  p, mod = played, played.mod
  hidden = jax.tree.map(jnp.asarray, p.deal_hidden)
  cards = np.asarray(mod.CARDS)
  for seat in (1, 2):
    private = np.asarray(jax.vmap(p.game.private, in_axes=(0, None))(hidden, seat))
    assert private.shape == (len(p.deals), p.game.private_length)
    assert (private[:, 0] == ord(str(seat))).all()
    np.testing.assert_array_equal(private[:, 1], cards[p.deals[:, seat - 1]])
    other = cards[p.deals[:, 2 - seat]]
    assert not (private == other[:, None]).any()
    if p.name == "leduc_poker":
      assert not (private == cards[p.deals[:, 2]][:, None]).any()
    view = game_lib.view(p.game, jnp.zeros((len(p.deals), p.game.max_length), jnp.int32),
                         hidden, seat)
    np.testing.assert_array_equal(np.asarray(view)[:, :2], private)
  # The shared transcript holds the opening, actions, end-of-turns and (Leduc, once
  # revealed) the public card: never a private card.
  tokens, length = p.final.tokens, p.final.length
  allowed = set(mod.ACTIONS) | {vocab.EOT}
  opening = set(tokens[0, :p.game.max_opening_length].tolist())
  assert not opening & set(mod.CARDS)
  for i in range(len(p.sequences)):
    played_tokens = tokens[i, p.game.max_opening_length:length[i]].tolist()
    public = {mod.CARDS[p.deals[p.deal_index[i], 2]]} if p.name == "leduc_poker" else set()
    assert set(played_tokens) <= allowed | public, i


def test_strategies_are_distributions_over_the_legal_actions(played):
  rec = played.rec
  decision = rec["decision"]
  legal = rec["legal"][decision]  # [D, A]
  for name, probs in rec["probs"].items():
    for seat in (0, 1):
      pr = probs[:, :, seat][decision]
      assert np.isfinite(pr).all() and (pr >= 0).all(), name
      np.testing.assert_allclose(pr.sum(-1), 1.0, atol=1e-6, err_msg=name)
      assert (pr[~legal] == 0).all(), name


def tabular_policy(played, strategy_one, strategy_two, snap=False):
  """OpenSpiel's TabularPolicy of the two seats' strategies, read at every decision;
  the same probabilities at every history of an information state."""
  p, rec = played, played.rec
  pol = policy_lib.TabularPolicy(p.spiel)
  seen = {}
  idx = np.argwhere(rec["decision"])
  strings = information_strings(played)
  for (i, t), string in zip(idx, strings):
    seat = int(rec["to_move"][i, t])
    name = (strategy_one, strategy_two)[seat - 1]
    pr = rec["probs"][name][i, t, seat - 1].astype(np.float64)
    if snap:  # float32 probabilities to the fractions they stand for (within 1e-7).
      pr = np.array([float(fractions.Fraction(x).limit_denominator(1000)) for x in pr])
    if string in seen:
      np.testing.assert_array_equal(seen[string], pr)  # No card of the opponent's read.
    seen[string] = pr
    pol.policy_for_key(string)[:] = pr
  assert len(seen) == len(pol.state_lookup)
  return pol


def information_strings(played):
  """The mover's OpenSpiel information state string at every decision (cached)."""
  if not hasattr(played, "strings"):
    rec, mod = played.rec, played.mod
    out = []
    for i, t in np.argwhere(rec["decision"]):
      seat = int(rec["to_move"][i, t])
      b = type(rec["betting"])(*(x[i, t] for x in rec["betting"]))
      card = card_of(played.hidden, i, seat)
      out.append(mod.information_state_string(b, card, seat))
    played.strings = out
  return played.strings


def exact_value(played, strategy_one, strategy_two):
  """Player one's expected payoff, summed over every deal and betting sequence."""
  rec = played.rec
  reach = played.deal_probs[played.deal_index].copy()
  for i, t in np.argwhere(rec["decision"]):
    seat = int(rec["to_move"][i, t])
    a = played.sequences[i][int(rec["decision"][i, :t].sum())]
    reach[i] *= rec["probs"][(strategy_one, strategy_two)[seat - 1]][i, t, seat - 1, a]
  return float(np.sum(reach * played.final.returns[:, 0]))


def test_kuhn_equilibrium_is_unexploitable_and_random_has_openspiels_nash_conv():
  played = get_played("kuhn_poker")
  eq = tabular_policy(played, "equilibrium", "equilibrium", snap=True)
  assert exploitability.exploitability(played.spiel, eq) < 1e-9
  raw = tabular_policy(played, "equilibrium", "equilibrium")
  assert exploitability.exploitability(played.spiel, raw) < 1e-6  # float32 probabilities.
  # The table it reads is exact, for the whole family.
  for alpha in (0.0, 1 / 6, 1 / 3):
    table = kuhn_poker.equilibrium_table(alpha)
    pol = policy_lib.TabularPolicy(played.spiel)
    for card in range(3):
      for row, hist in enumerate(kuhn_poker.DECISIONS):
        pol.policy_for_key(f"{card}{hist}")[:] = [1 - table[row, card], table[row, card]]
    assert exploitability.exploitability(played.spiel, pol) < 1e-9, alpha
  rand = tabular_policy(played, "random", "random")
  nash_conv = exploitability.nash_conv(played.spiel, rand)
  assert nash_conv == pytest.approx(0.9167, abs=1e-4)
  assert nash_conv == pytest.approx(
      exploitability.nash_conv(played.spiel, policy_lib.UniformRandomPolicy(played.spiel)),
      abs=1e-6)
  assert exact_value(played, "equilibrium", "equilibrium") == pytest.approx(-1 / 18, abs=1e-6)


def test_leduc_random_is_openspiels_uniform_policy():
  played = get_played("leduc_poker")
  rand = tabular_policy(played, "random", "random")
  uniform = policy_lib.UniformRandomPolicy(played.spiel).to_tabular()
  for key, index in uniform.state_lookup.items():
    np.testing.assert_allclose(rand.policy_for_key(key),
                               uniform.action_probability_array[index], atol=1e-7)
  assert exploitability.nash_conv(played.spiel, rand) == pytest.approx(4.7472, abs=1e-4)
  tabular_policy(played, "heuristic", "heuristic")  # Reads no card of the opponent's.


# Registered players (name, weight in the mixture) of each seat, one of each strategy.
LINEUPS = {
    "kuhn_poker": ([("human", 1), ("random", 1), ("equilibrium", 2)],
                   [("expert", 2), ("average", 1), ("noisy", 1), ("heuristic", 1)], 1 << 17),
    "leduc_poker": ([("human", 1), ("random", 1)],
                    [("expert", 1), ("average", 1), ("noisy", 1)], 1 << 14),
}


def test_scripted_players_play_their_strategies(played):
  """Registered players of each seat against those of the other, in one rollout per game
  (a ``players.mixture`` per seat): each pairing's mean payoff is its exact expected
  payoff (from the strategies' probabilities at every decision) within five standard
  errors. Kuhn's equilibrium against itself pays player one -1/18."""
  name, g = played.name, played.game
  lineup_one, lineup_two, batch = LINEUPS[name]
  seats = tuple(players.mixture([games.player(name, seat, n, g) for n, _ in lineup],
                                [w for _, w in lineup])
                for seat, lineup in ((1, lineup_one), (2, lineup_two)))
  in_play = rollout.play_out(g, seats, (None, None), jax.random.key(0), batch)
  returns = np.asarray(rollout.finish(in_play).returns)
  assert bool(np.all(np.asarray(in_play.state.done)))
  np.testing.assert_array_equal(returns[:, 0], -returns[:, 1])
  drawn_one, drawn_two = (np.asarray(in_play.carries[s][0]) for s in (0, 1))
  for a, (one, _) in enumerate(lineup_one):
    for b, (two, _) in enumerate(lineup_two):
      r = returns[(drawn_one == a) & (drawn_two == b), 0]
      exact = exact_value(played, played_strategy(name, one), played_strategy(name, two))
      se = max(r.std(), 0.1) / np.sqrt(len(r))
      assert abs(r.mean() - exact) < 5 * se, (one, two, r.mean(), exact, se)
      if (one, two) == ("equilibrium", "expert") and name == "kuhn_poker":
        assert exact == pytest.approx(-1 / 18, abs=1e-6)
        assert abs(r.mean() + 1 / 18) < 5 * se < 0.05, (r.mean(), se)


def test_openings_draw_every_deal_with_its_probability(played):
  g = played.game
  n = 200 * len(played.deals)
  states = jax.jit(jax.vmap(g.opening))(jax.random.split(jax.random.key(2), n))
  hidden = jax.device_get(states.hidden)
  drawn = np.stack([hidden["one"]["card"], hidden["two"]["card"],
                    hidden.get("public", np.zeros(n, np.int32))], 1)
  index = {tuple(d): i for i, d in enumerate(played.deals)}
  counts = np.bincount([index[tuple(d)] for d in drawn], minlength=len(played.deals))
  expected = n * played.deal_probs
  assert (np.abs(counts - expected) < 5 * np.sqrt(expected)).all()
  assert (np.asarray(states.length) == g.max_opening_length).all()


def test_payoff_is_total_on_garbage(played):
  """Any writable tokens, the legal mask ignored: finite, zero-sum payoffs."""
  g = played.game

  def garbage(key):
    k_open, k_play = jax.random.split(key)
    state = g.opening(k_open)

    def body(state, key):
      token = jax.random.choice(key, jnp.concatenate([
          jnp.asarray(played.mod.ACTIONS), jnp.asarray(played.mod.CARDS),
          jnp.array([vocab.EOT, vocab.EOG, ord("x")])]))
      return game_lib.step(g, state, token)[0], None

    state, _ = jax.lax.scan(body, state, jax.random.split(k_play, g.max_length))
    return state.returns, g.payoff(state)

  returns, payoff = jax.jit(jax.vmap(garbage))(jax.random.split(jax.random.key(3), 512))
  for x in (np.asarray(returns), np.asarray(payoff)):
    assert np.isfinite(x).all()
    np.testing.assert_array_equal(x[:, 0], -x[:, 1])
