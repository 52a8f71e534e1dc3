"""Backups of the stack (the backup stage of deploys/full_stack.py): `pyinfra inventories/office.py deploys/backup.py`.

Installs restic, the backup/restore scripts and the timer on every host with the gateway role (the vector
store lives there) and on inference hosts (configs, TLS, secrets). The repository password comes from the
admin machine's secrets, read back from the host first when the host already has one.
"""

from deploys.stages import cut, run

run(cut("backup"))
