"""Reference data the analysis needs: Atari random / human-gamer scores and the manifest of the
published score files (where to fetch each one, and its sha256).

Source of both: the public repository danijar/dreamerv3 (MIT licence) at the pinned commit below.
The Atari figures are the `atari57_gamer` entries of its `baselines.yaml` for the 26 Atari100k
games; the file hashes were computed from copies of `scores/<file>` at that commit.
"""
from __future__ import annotations

REPOSITORY = "danijar/dreamerv3"
COMMIT = "e3f02248693a79dc8b0ebd62c93683888ddaccfe"
SOURCE = f"{REPOSITORY}@{COMMIT[:7]} baselines.yaml atari57_gamer"
BASE_URL = f"https://raw.githubusercontent.com/{REPOSITORY}/{COMMIT}/scores"

# task -> (random, human gamer) episode return.
ATARI: dict[str, tuple[float, float]] = {
    "atari_alien": (227.8, 7127.7),
    "atari_amidar": (5.8, 1719.5),
    "atari_assault": (222.4, 742.0),
    "atari_asterix": (210.0, 8503.3),
    "atari_bank_heist": (14.2, 753.1),
    "atari_battle_zone": (2360.0, 37187.5),
    "atari_boxing": (0.1, 12.1),
    "atari_breakout": (1.7, 30.5),
    "atari_chopper_command": (811.0, 7387.8),
    "atari_crazy_climber": (10780.5, 35829.4),
    "atari_demon_attack": (152.1, 1971.0),
    "atari_freeway": (0.0, 29.6),
    "atari_frostbite": (65.2, 4334.7),
    "atari_gopher": (257.6, 2412.5),
    "atari_hero": (1027.0, 30826.4),
    "atari_jamesbond": (29.0, 302.8),
    "atari_kangaroo": (52.0, 3035.0),
    "atari_krull": (1598.0, 2665.5),
    "atari_kung_fu_master": (258.5, 22736.3),
    "atari_ms_pacman": (307.3, 6951.6),
    "atari_pong": (-20.7, 14.6),
    "atari_private_eye": (24.9, 69571.3),
    "atari_qbert": (163.9, 13455.0),
    "atari_road_runner": (11.5, 7845.0),
    "atari_seaquest": (68.4, 42054.7),
    "atari_up_n_down": (533.4, 11693.2),
}

# Published score files the suites compare against: file name -> sha256.
MANIFEST: dict[str, str] = {
    "atari100k-dreamerv3.json.gz": "c839ef2fd28a5c4b7c6f36151a8d16cb41d4d2fb72338c265850b2b4dd5b5e15",
    "atari100k-ppo_fixhp.json.gz": "8794eee54b57e8ddf65035d2fcbf4a5c8d84918b67cb6949f83d28a4ce47a9f4",
    "dmc_proprio-d4pg.json.gz": "a6d87670d584daef223736948cb08887b66758433431b4a39e735fff7a9e5bdf",
    "dmc_proprio-ddpg.json.gz": "894cde656c479594dbe481487c6f3e784f6dacfbfd88d28f506d0b1c47a61a89",
    "dmc_proprio-dmpo.json.gz": "e270f18cfdc75b0eaac7cf6dda8415ec1677568067b8a77ea021e242ecf72cf4",
    "dmc_proprio-dreamerv3.json.gz": "8182860a8a56dc56836c319fde9b941376621e1e0d474141c7d174ab833cc7f4",
    "dmc_proprio-mpo.json.gz": "cc6de76168519ab697cc8bf8d86ea78770526f741912cc5716724e963c1bd23e",
    "dmc_proprio-ppo_fixhp.json.gz": "8530f273c3a457b95e4819f788a39629e3663f15ef31c13a075c389faf2afe82",
    "dmc_vision-curl.json.gz": "1d024d75c143cfdbdeed63f8d476c669d4be647759b35ef8fd44ae20d679c47d",
    "dmc_vision-dreamerv3.json.gz": "68dd7e83ee6af076734e1edb843a3816cd241736c92e91837e7cf460231b7b08",
    "dmc_vision-drqv2.json.gz": "18f932e73f139f8192d79f84f90d74b4e7bb9e7a089944fa01a8d10895cf1337",
    "dmc_vision-ppo_fixhp.json.gz": "7cd24804d6596759c1bfc52d76c0c95badbd96ceae3239ef1602755c8b17c8e0",
    "dmc_vision-sac.json.gz": "1d8f352472da8016c113053eba46b4274fc3dac20e1a4eb05ed38267e2a26aa9",
    "minecraft_diamond-dreamerv3.json.gz": "8580751af2ed04479056f0159c404747efe42c20e81464c4a04205b94296f09a",
    "minecraft_diamond-impala.json.gz": "dc8174eabf09ac3b24e839f2bf3402218f416d8d3811866d6b53d1b4ec9a3f79",
    "minecraft_diamond-ppo_fixhp.json.gz": "3f1135eef4dd2b49f26f834bbbdb7d321e49cc18437832937404cd267e36a4ac",
    "minecraft_diamond-r2d2.json.gz": "2e708fee94bde11b1b7ad845c48d4dabedc20762d99889c6e6bd4cc4bcc3e127",
    "minecraft_diamond-rainbow.json.gz": "cc240d7b00100574993d093bf9cff4cc244fe7a073c49f2265c18d98bc0e5a73",
}


def url(name: str, base: str = BASE_URL) -> str:
    """Where the published file `name` is fetched from: `{base}/{name}`."""
    return f"{base.rstrip('/')}/{name}"
