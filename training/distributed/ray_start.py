"""How every driver of the kit reaches Ray: it joins the cluster at RAY_ADDRESS, or starts a private one with
token auth. The kit's code and tf-keras reach every worker as runtime_env.job_runtime_env says, and a cluster on
this machine stays on loopback (local_node.py)."""

from training.distributed import local_node, local_ray_auth, runtime_env


def start_ray(address, num_cpus):
    """Returns the `ray` module, connected. `num_cpus` sizes a private cluster (no address) and is ignored
    otherwise."""
    if not address:
        # Before Ray is imported: it reads its auth mode once, at import.
        local_ray_auth.enable_token_auth()
    if runtime_env.is_local_address(address):
        local_node.hold_to_loopback()
    import ray

    shipped = runtime_env.job_runtime_env(address)
    if address:
        ray.init(address=address, runtime_env=shipped, logging_level="WARNING", log_to_driver=False)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, runtime_env=shipped, logging_level="WARNING",
                 log_to_driver=False)
    return ray
