"""mathrl's MoE expert runtime. The options dataclass (`mathrl.moe.config`) imports no torch."""
