"""Deploy file of the sandbox reboot test: the full stack's stages from preflight to Docker, with the reboot
stage forced while a request file exists in /run (a GPU-less host never needs one for its driver; the request
is gone after the reboot, as /run starts empty at every boot). Everything else is deploys/stages.py as is."""

from pyinfra import host
from pyinfra.facts.files import File

from deploys.stages import Run, cut, run

REQUEST = "/run/llmrack-test/reboot-request"

ctx = Run.for_this_host()
if host.get_fact(File, path=REQUEST):
    ctx.reboot_when, ctx.reboot_certain = (lambda: True), True
    ctx.check_gpu_after_reboot = False  # no GPU here to answer nvidia-smi
run(cut("preflight", "docker"), ctx)
