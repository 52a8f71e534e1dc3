"""The security control suite of ``llmrack verify --only security``: controls with ids and benchmark lines.

Each control reads the host's live state (``sshd -T``, ``sysctl``, ``auditctl -l``, file modes,
``fail2ban-client``, ``docker inspect``) and never the deploy code; its expected values come from the
benchmark line it cites (CIS Ubuntu Linux 24.04 LTS Benchmark, CIS Docker Benchmark, dev-sec baselines,
the project's seeds). Controls knowingly not applied are waived in ``security/waivers.yaml`` (built in) or
the project's ``security-waivers.yaml``, each with its reason, and reported as waived.
"""

from llmrack.verify.security import probes_system  # noqa: F401  (its judges join probes.JUDGES)
from llmrack.verify.security.controls import CONTROLS, Control
from llmrack.verify.security.probes import register_controls

register_controls(CONTROLS)  # the controls (data) below, their probes (which import them) above: no loop

__all__ = ["CONTROLS", "Control"]
