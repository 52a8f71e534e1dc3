"""A gateway, two inference nodes and a monitoring node (entry tier GPUs on each inference node).

The gateway balances /v1/* across both inference nodes (least_conn, max_fails); Prometheus on the
monitoring node scrapes every host. Addresses are documentation examples: put yours.
"""

_common = {"ssh_user": "ops", "_sudo": True, "tier": "entry"}

gateway = [
    ("gw-01", {**_common, "ssh_hostname": "192.0.2.20", "roles": ["gateway"]}),
]

inference = [
    ("gpu-01", {**_common, "ssh_hostname": "192.0.2.21", "roles": ["inference"]}),
    ("gpu-02", {**_common, "ssh_hostname": "192.0.2.22", "roles": ["inference"]}),
]

monitoring = [
    ("mon-01", {**_common, "ssh_hostname": "192.0.2.23", "roles": ["monitoring"]}),
]
