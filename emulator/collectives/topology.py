"""Trainium3 topology for the cost model: ranks -> chips -> servers -> racks -> UltraServers -> EFA cluster.

A message between two ranks travels on the tier of the smallest unit holding both:

====  ==============  ====================================================  =============================
tier  unit            bandwidth (per chip, each direction)                  latency (alpha) per message
====  ==============  ====================================================  =============================
0     chip            4.9 TB/s: on-chip DMA/HBM [trainium3.rst]               0.5 us [assumed]
1     server          256 GB/s: 4 x PCIe Gen6 x8 [trn3-arch.rst]             1.5 us [Trn2 per-hop 1-2 us]
2     rack            320 GB/s: 5 x Gen6 x8 inter-server [trn3-arch.rst]     2.0 us [assumed]
3     UltraServer     128 GB/s: 2 x Gen6 x8 inter-rack [trn3-arch.rst]       2.5 us [assumed]
4     cluster (EFA)   25 GB/s: 200 Gb/s per chip [trn3-arch.rst]             15 us [Trn2 EFA, measured]
====  ==============  ====================================================  =============================

Gen2 UltraServer: 144 chips = 36 servers x 4 chips; Gen1: 64 chips = 4 servers x 16 [trn3-arch.rst]. How servers
divide into racks is not published: we assume a Gen2 UltraServer spans 2 racks of 18 servers, a Gen1 one rack.
The documents call the PCIe figures "bidirectional"; we read them as per direction (the open question is listed in
the reference). Ranks are numbered in topology order (rank r sits on chip r // ranks_per_chip, and so on).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import get_settings
from ..errors import ArgumentError

__all__ = ["Topology", "TIER_NAMES"]

TIER_NAMES = ("chip", "server", "rack", "ultraserver", "cluster")


@dataclass(frozen=True)
class Topology:
    """Unit sizes and per-tier link parameters (bandwidth in bytes/s per chip, latency in seconds)."""

    ranks_per_chip: int = 4
    chips_per_server: int = 4
    servers_per_rack: int = 18
    racks_per_ultraserver: int = 2
    bandwidth: tuple = (4.9e12, 256e9, 320e9, 128e9, 25e9)
    latency: tuple = (0.5e-6, 1.5e-6, 2.0e-6, 2.5e-6, 15e-6)
    dma_compute: float = 4.9e12  # bytes/s per chip the DMA engines read+write while reducing
    name: str = "trn3-gen2"

    @classmethod
    def preset(cls, generation: str | None = None, ranks_per_chip: int | None = None) -> "Topology":
        """``gen2`` (144-chip UltraServer) or ``gen1`` (64-chip); defaults from the settings."""
        s = get_settings()
        generation = s.collective_topology if generation is None else generation
        rpc = s.collective_ranks_per_chip if ranks_per_chip is None else int(ranks_per_chip)
        if generation == "gen2":
            return cls(rpc, 4, 18, 2, name="trn3-gen2")
        if generation == "gen1":
            return cls(rpc, 16, 4, 1, name="trn3-gen1")
        raise ArgumentError(f"topology: {generation!r} is not one of 'gen2', 'gen1'")

    @property
    def unit_ranks(self) -> tuple:
        """Ranks per unit of tiers 0..3 (chip, server, rack, UltraServer)."""
        a = self.ranks_per_chip
        b = a * self.chips_per_server
        c = b * self.servers_per_rack
        return a, b, c, c * self.racks_per_ultraserver

    @property
    def chips_per_ultraserver(self) -> int:
        return self.chips_per_server * self.servers_per_rack * self.racks_per_ultraserver

    def tier(self, src, dst):
        """Tier (0..4) of a message ``src -> dst`` (ints or NumPy integer arrays)."""
        import numpy as np

        src = np.asarray(src)
        dst = np.asarray(dst)
        t = np.full(np.broadcast(src, dst).shape, 4, np.int64)
        for i in range(3, -1, -1):
            g = self.unit_ranks[i]
            t = np.where(src // g == dst // g, i, t)
        return t

    def describe(self, ranks: int | None = None) -> str:
        lines = [f"{self.name}: {self.ranks_per_chip} ranks/chip, {self.chips_per_server} chips/server, "
                 f"{self.servers_per_rack} servers/rack, {self.racks_per_ultraserver} racks/UltraServer "
                 f"({self.chips_per_ultraserver} chips)"]
        for i, name in enumerate(TIER_NAMES):
            lines.append(f"  tier {i} {name:<12s} {self.bandwidth[i] / 1e9:8.0f} GB/s/chip  "
                         f"alpha {self.latency[i] * 1e6:5.1f} us")
        if ranks is not None:
            chips = -(-ranks // self.ranks_per_chip)
            lines.append(f"  {ranks} ranks = {chips} chips = {chips / self.chips_per_ultraserver:.3g} UltraServers")
        return "\n".join(lines)
