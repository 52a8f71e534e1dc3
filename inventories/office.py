"""One standard-tier server in the office (seed 000's 标准级: 4x RTX 4090, 50 people).

Copy this file, change the address and key, then:

    llmrack validate inventories/office.py           # checks everything, contacts no host
    pyinfra inventories/office.py deploys/full_stack.py
    llmrack verify inventories/office.py --report reports/

Host data keys llmrack reads (anything starting with ssh_ or _ belongs to pyinfra):
    tier       a file under tiers/ (entry, standard, high-performance)
    roles      inference, gateway, monitoring (default: all three)
    overrides  per-host changes deep-merged onto the tier, e.g. a different model or mirror
    data_disk  the data volume to mount (device, mount, fstype, options)
    address    the address clients and other hosts use (default: ssh_hostname)
"""

llm_servers = [
    (
        "llm-01",
        {
            "ssh_hostname": "192.0.2.10",  # documentation address: put your server's here
            "ssh_user": "ops",
            "_sudo": True,
            "tier": "standard",
            "data_disk": {"device": "/dev/disk/by-label/llmdata", "mount": "/data"},
            "overrides": {
                # Users in mainland China: mirrors for every download.
                "base": {"apt": {"mirror": "https://mirrors.tuna.tsinghua.edu.cn/ubuntu"}},
                "docker": {
                    "apt_mirror": "https://mirrors.aliyun.com/docker-ce/linux",
                    "registry_mirrors": ["https://docker.m.daocloud.io"],
                },
                "stack": {"vllm": {"hf_endpoint": "https://hf-mirror.com"}},
            },
        },
    ),
]
