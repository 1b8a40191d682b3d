#!/usr/bin/env python3
"""lookout's GPU figures against nvidia-smi on a real GPU, and container attribution.

Where NVML loads: starts a PyTorch matmul loop, moves it into a cgroup with a Docker-style
name (v2: /sys/fs/cgroup/system.slice/docker-<id>.scope; v1: <ctrl>/docker/<id>), starts
lookout (plain HTTP, Docker off), then compares lookout's /api/v1/host/gpu with
`nvidia-smi --query-gpu` (utilization within 10 points, memory used within 2 %) and checks
that the load's process record carries that container id. Where cgroups cannot be written
(an unprivileged sandbox) it falls back to a proc root whose <pid>/cgroup says the same, and
says so. Prints SKIPPED and exits 0 where NVML/nvidia-smi is missing.

usage: bench/gpu_check.py [--lookout target/release/lookout] [--seconds 25]
"""
import argparse, json, os, secrets, shutil, signal, socket, subprocess, sys, tempfile, time
import urllib.request

TOKEN = "lk_gpu-check-token-0123456789abcdef"


def load(seconds, mib):
    import torch
    dev = torch.device("cuda:0")
    hold = torch.empty(mib * 1024 * 1024, dtype=torch.uint8, device=dev)  # noqa: F841
    a = torch.randn(8192, 8192, device=dev, dtype=torch.float16)
    b = torch.randn(8192, 8192, device=dev, dtype=torch.float16)
    print("LOAD READY", flush=True)
    end = time.time() + seconds
    while time.time() < end:
        for _ in range(20):
            a = (a @ b) * 1e-3
        torch.cuda.synchronize()


def smi(query, kind="--query-gpu"):
    out = subprocess.run(["nvidia-smi", f"{kind}={query}", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, timeout=30)
    return [[f.strip() for f in l.split(",")] for l in out.stdout.strip().splitlines() if l.strip()]


def get(base, path):
    req = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def into_cgroup(pid, cid):
    """Moves pid into a Docker-named cgroup; returns (mode, path) or None."""
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        path = f"/sys/fs/cgroup/system.slice/docker-{cid}.scope"
        try:
            os.makedirs(path, exist_ok=True)
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write(str(pid))
            return ("cgroup v2", path)
        except OSError as e:
            print(f"cgroup v2 {path}: {e}")
            return None
    done = []
    for ctrl in ["memory", "cpu,cpuacct", "cpu", "pids", "systemd"]:
        root = f"/sys/fs/cgroup/{ctrl}"
        if not os.path.isdir(root):
            continue
        path = f"{root}/docker/{cid}"
        try:
            os.makedirs(path, exist_ok=True)
            with open(os.path.join(path, "cgroup.procs"), "w") as f:
                f.write(str(pid))
            done.append(path)
        except OSError as e:
            print(f"cgroup v1 {path}: {e}")
    return ("cgroup v1", ", ".join(done)) if done else None


def fake_proc_root(pid, cid):
    """A proc root that is /proc except <pid>/cgroup, which names the container."""
    root = tempfile.mkdtemp(prefix="lookout-proc-")
    for e in os.listdir("/proc"):
        if e != str(pid):
            os.symlink(f"/proc/{e}", os.path.join(root, e))
    os.mkdir(os.path.join(root, str(pid)))
    with open(os.path.join(root, str(pid), "cgroup"), "w") as f:
        f.write(f"0::/system.slice/docker-{cid}.scope\n")
    return root


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lookout", default="target/release/lookout")
    ap.add_argument("--seconds", type=int, default=25)
    ap.add_argument("--mib", type=int, default=6144, help="extra GPU memory the load holds")
    ap.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.load:
        return load(a.seconds, a.mib)
    if shutil.which("nvidia-smi") is None or subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode != 0:
        print("SKIPPED: gpu_check: no NVIDIA GPU or driver here")
        return 0
    failures = []
    cid = secrets.token_hex(32)
    loadp = subprocess.Popen([sys.executable, __file__, "--load", "--seconds", str(a.seconds + 30), "--mib", str(a.mib)],
                             stdout=subprocess.PIPE, text=True)
    line = loadp.stdout.readline()
    if "LOAD READY" not in line:
        print("load did not start:", line)
        return 1
    print(f"load pid {loadp.pid}, container id {cid}")
    placed = into_cgroup(loadp.pid, cid)
    env = dict(os.environ, LOOKOUT_TOKEN=TOKEN, LOOKOUT_SAMPLING__DOCKER="false", LOOKOUT_LOG__FORMAT="json")
    if placed:
        print(f"attribution through a real {placed[0]}: {placed[1]}")
        with open(f"/proc/{loadp.pid}/cgroup") as f:
            print("  /proc/<pid>/cgroup:", f.read().strip().replace("\n", " | "))
    else:
        root = fake_proc_root(loadp.pid, cid)
        env["LOOKOUT_HOST__PROC_ROOT"] = root
        print(f"cgroups not writable here: attribution through proc root {root} (<pid>/cgroup written)")
    data = tempfile.mkdtemp(prefix="lookout-data-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(os.path.join(data, "lookout.log"), "w")
    lk = subprocess.Popen([a.lookout, "serve", "--http", "--listen", f"127.0.0.1:{port}", "--data-dir", data],
                          env=env, stdout=log, stderr=log)
    try:
        for _ in range(100):
            try:
                if get(base, "/api/v1/host/gpu").get("available") is not None:
                    break
            except Exception:
                time.sleep(0.2)
        time.sleep(3)
        rounds = []
        for i in range(5):
            s = smi("index,utilization.gpu,memory.used,memory.total")
            g = get(base, "/api/v1/host/gpu")
            s2 = smi("index,utilization.gpu,memory.used,memory.total")
            apps = smi("pid,used_memory", "--query-compute-apps")
            if not g.get("available"):
                print("lookout says GPUs are not available:", g.get("reason"))
                failures.append("not available")
                break
            gpu0 = g["gpus"][0]
            util_l = gpu0["utilization_gpu_percent"]
            util_s = (float(s[0][1]) + float(s2[0][1])) / 2
            mem_l = gpu0["memory"]["used_bytes"] / 2**20
            mem_s = (float(s[0][2]) + float(s2[0][2])) / 2
            proc = next((p for p in gpu0["processes"] if p["pid"] == loadp.pid), None)
            app_mem = next((float(m) for p, m in apps if p.isdigit() and int(p) == loadp.pid), None)
            r = dict(util_lookout=util_l, util_smi=util_s, mem_used_mib_lookout=round(mem_l, 1),
                     mem_used_mib_smi=mem_s, process=proc, smi_process_mib=app_mem)
            rounds.append(r)
            print(f"round {i}: util lookout {util_l}% vs nvidia-smi {util_s:.0f}% | memory used lookout "
                  f"{mem_l:.0f} MiB vs nvidia-smi {mem_s:.0f} MiB ({(mem_l - mem_s) / max(mem_s, 1) * 100:+.2f} %)")
            if proc:
                pm = (proc["used_memory_bytes"] or 0) / 2**20
                print(f"  process {proc['pid']}: {pm:.0f} MiB (nvidia-smi {app_mem}), SM {proc['sm_utilization_percent']}%, "
                      f"container_id {proc['container_id']}, runtime {proc['container_runtime']}, cgroup {proc['cgroup']}")
            else:
                print(f"  process {loadp.pid} not in lookout's list: {[p['pid'] for p in gpu0['processes']]}"
                      f" (nvidia-smi apps: {apps})")
            if abs(util_l - util_s) > 10:
                failures.append(f"round {i}: utilization {util_l} vs {util_s}")
            if abs(mem_l - mem_s) > 0.02 * mem_s:
                failures.append(f"round {i}: memory {mem_l:.0f} vs {mem_s:.0f} MiB")
            if not proc or proc.get("container_id") != cid:
                failures.append(f"round {i}: process not attributed to {cid}: {proc}")
            elif app_mem is not None and abs((proc["used_memory_bytes"] or 0) / 2**20 - app_mem) > 0.02 * app_mem:
                failures.append(f"round {i}: process memory {proc['used_memory_bytes']} vs {app_mem} MiB")
            time.sleep(2)
        g = get(base, "/api/v1/host/gpu")
        usage = [c for c in g.get("containers", []) if c["container_id"] == cid]
        print("per-container block:", json.dumps(usage[0]["gpu"] if usage else None))
        if not usage:
            failures.append("no per-container block")
        req = urllib.request.Request(base + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        metrics = urllib.request.urlopen(req, timeout=10).read().decode()
        wanted = [l for l in metrics.splitlines() if l.startswith(("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED",
                  "DCGM_FI_DEV_POWER_USAGE", "lookout_container_gpu_memory_bytes", "lookout_gpu_up"))]
        print("metrics:\n  " + "\n  ".join(wanted))
        first = {k: v for k, v in g["gpus"][0].items() if k != "processes"}
        print("gpu 0 record:", json.dumps(first))
        out = os.environ.get("OUT")
        if out:
            with open(os.path.join(out, "gpu_check.json"), "w") as f:
                json.dump(dict(rounds=rounds, gpu=g, failures=failures), f, indent=1)
    finally:
        lk.send_signal(signal.SIGTERM)
        try:
            lk.wait(10)
        except subprocess.TimeoutExpired:
            lk.kill()
        loadp.kill()
        log.close()
        lines = [l for l in open(os.path.join(data, "lookout.log")) if "gpu" in l.lower() or "nvml" in l.lower()]
        print("lookout GPU log lines:", *lines, sep="\n  ")
    print("RESULT:", "PASS" if not failures else "FAIL", *failures, sep="\n  ")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
