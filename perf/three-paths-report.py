#!/usr/bin/env python3
"""Turns the raw data of perf/three-paths (RESULTS/raw) into RESULTS/report.md,
RESULTS/report.json and gnuplot PNGs. Runs on the host after the L1 run; can
be re-run on a results folder by hand: perf/three-paths-report.py RESULTS."""
import json
import os
import subprocess
import sys

PATH_NAMES = {
    "emulated": "emulated NVMe",
    "emulated-noshadow": "emulated NVMe, shadow doorbells off",
    "virtio": "virtio-blk / vhost-user",
    "passthrough": "NVMe VF passthrough",
}
PATH_ORDER = ["emulated-noshadow", "emulated", "virtio", "passthrough"]


def read_env(path):
    env = {}
    if os.path.exists(path):
        for line in open(path):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                env[k] = v
    return env


def read_sample(path):
    """counters..., vmm_ticks, backend_ticks, time"""
    with open(path) as f:
        return [float(x) for x in f.read().split()]


def fio_summary(path):
    job = json.load(open(path))["jobs"][0]
    ios, iops, runtime_ms, pct = 0, 0.0, 0, {}
    for direction in ("read", "write"):
        d = job[direction]
        if d["total_ios"] == 0:
            continue
        ios += d["total_ios"]
        iops += d["iops"]
        runtime_ms = max(runtime_ms, d["runtime"])
        p = d["clat_ns"].get("percentile", {})
        pct = {k: p.get(v, 0) / 1000.0 for k, v in
               (("p50", "50.000000"), ("p99", "99.000000"), ("p99.9", "99.900000"))}
    return {"ios": ios, "iops": iops, "runtime_s": runtime_ms / 1000.0, "lat_us": pct}


def host_cpu_us(d, job, column, tick, units):
    """CPU µs per unit of a process the host sampled at the job's console
    markers (column of the .start/.end samples), or None without samples."""
    try:
        a = read_sample(os.path.join(d, job + ".start"))
        b = read_sample(os.path.join(d, job + ".end"))
        return (b[column] - a[column]) / tick * 1e6 / units
    except (OSError, ValueError, IndexError):
        return None


def mark_table(stats_path):
    """mark id -> {"time": s, "vmm_cpu": s, "kvm": {stat: sum over vCPUs}, "irqs": device irqs}"""
    stats = json.load(open(stats_path))
    marks = {}
    for m in stats.get("marks", []):
        kvm = {}
        for v in m["vcpus"]:
            for k, val in v.items():
                kvm[k] = kvm.get(k, 0) + val
        marks[m["id"]] = {"time": m["time_s"], "vmm_cpu": m.get("other_thread_cpu_s", m["vmm_cpu_s"]),
                          "vcpu_cpu": m.get("vcpu_thread_cpu_s"), "kvm": kvm,
                          "irqs": sum(d["irqs_injected"] for d in m["devices"])}
    return marks


def job_marks(console_path):
    """job name -> (start mark, end mark), from the guest's marker lines."""
    out, starts = {}, {}
    for line in open(console_path, errors="replace"):
        parts = line.split()
        if len(parts) == 3 and parts[2].startswith("mark=") and parts[0] in ("GUEST-BENCH-START", "GUEST-BENCH-END"):
            n = int(parts[2][5:])
            if parts[0] == "GUEST-BENCH-START":
                starts[parts[1]] = n
            elif parts[1] in starts:
                out[parts[1]] = (starts[parts[1]], n)
    return out


def storage_results(raw, columns, tick):
    n = len(columns)
    results = {}
    for path in PATH_ORDER:
        d = os.path.join(raw, "storage-" + path)
        if not os.path.isdir(d):
            continue
        entry = {"name": PATH_NAMES[path], "jobs": {}}
        results[path] = entry
        for note in ("unavailable", "failed"):
            f = os.path.join(d, note)
            if os.path.exists(f):
                entry[note] = " ".join(open(f).read().split())[:600]
        try:
            marks = mark_table(os.path.join(d, "stats.json"))
            spans = job_marks(os.path.join(d, "console"))
        except (OSError, ValueError, KeyError) as e:
            entry.setdefault("failed", f"no stats marks: {e}")
            continue
        idle_rate = {}
        if "idle" in spans and all(m in marks for m in spans["idle"]):
            a, b = (marks[m] for m in spans["idle"])
            secs = b["time"] - a["time"]
            if secs > 0:
                idle_rate = {c: (b["kvm"].get(c, 0) - a["kvm"].get(c, 0)) / secs for c in columns}
        entry["idle_per_s"] = idle_rate
        for name in sorted(os.listdir(d)):
            if not name.endswith(".fio.json"):
                continue
            job = name[:-len(".fio.json")]
            try:
                fio = fio_summary(os.path.join(d, name))
                a, b = (marks[m] for m in spans[job])
            except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
                entry["jobs"][job] = {"error": f"{type(e).__name__}: {e}"}
                continue
            ios = fio["ios"] or 1
            secs = b["time"] - a["time"]
            per_io, net_per_io = {}, {}
            for c in columns:
                delta = b["kvm"].get(c, 0) - a["kvm"].get(c, 0)
                per_io[c] = delta / ios
                # What the same span costs an idle guest (timer ticks and
                # host interrupts) taken off: the exits the I/O itself causes.
                net_per_io[c] = max(0.0, delta - idle_rate.get(c, 0) * secs) / ios
            # Samples: the counters, then the VMM's, the disk backend's and
            # the net backend's CPU ticks, then the time.
            backend_cpu = host_cpu_us(d, job, n + 1, tick, ios) if path == "virtio" else None
            entry["jobs"][job] = {
                "ios": fio["ios"], "iops": round(fio["iops"]), "lat_us": fio["lat_us"],
                "marks": list(spans[job]), "span_s": secs,
                "per_io": per_io, "net_of_idle_per_io": net_per_io,
                "device_irqs_per_io": (b["irqs"] - a["irqs"]) / ios,
                "vmm_cpu_us_per_io": (b["vmm_cpu"] - a["vmm_cpu"]) * 1e6 / ios,
                "vcpu_thread_cpu_us_per_io": (b["vcpu_cpu"] - a["vcpu_cpu"]) * 1e6 / ios
                if b["vcpu_cpu"] is not None else None,
                "backend_cpu_us_per_io": backend_cpu,
            }
    return results


NET_NAMES = {
    "emulated": "emulated e1000",
    "virtio": "virtio-net / vhost-user-net (DPDK)",
    "passthrough": "e1000e assigned whole (VFIO)",
}


def net_results(raw, columns, tick):
    """Per path, per ping-pong job: round trips/s, RTT, exits and CPU per round trip."""
    n = len(columns)
    results = {}
    for path in ("emulated", "virtio", "passthrough"):
        d = os.path.join(raw, "net-" + path)
        console = os.path.join(d, "console")
        if not os.path.exists(console):
            continue
        entry = {"name": NET_NAMES[path], "jobs": {}}
        results[path] = entry
        fails = [line.strip() for line in open(console, errors="replace")
                 if line.startswith("guest: netbench:") and "round trips" not in line]
        if fails:
            entry["failed"] = fails[-1][:400]
        if os.path.exists(os.path.join(d, "failed")):
            entry["failed"] = " ".join(open(os.path.join(d, "failed")).read().split())[:400]
        try:
            marks = mark_table(os.path.join(d, "stats.json"))
            spans = job_marks(console)
        except (OSError, ValueError, KeyError) as e:
            entry.setdefault("failed", f"no stats marks: {e}")
            continue
        for line in open(console, errors="replace"):
            parts = line.split()
            if len(parts) != 6 or parts[0] != "GUEST-NET-RESULT":
                continue
            job, sent, got, secs, rtt = parts[1], int(parts[2]), int(parts[3]), float(parts[4]), parts[5]
            if job not in spans or got == 0:
                entry["jobs"][job] = {"error": f"{got} of {sent} answered"}
                continue
            a, b = (marks[m] for m in spans[job])
            per_rt = {c: (b["kvm"].get(c, 0) - a["kvm"].get(c, 0)) / got for c in columns}
            net_cpu = host_cpu_us(d, job, n + 2, tick, got) if path == "virtio" else None
            rtts = rtt.split("/") if rtt != "none" else []
            entry["jobs"][job] = {
                "round_trips": got, "sent": sent, "seconds": secs,
                "round_trips_per_s": got / secs if secs > 0 else None,
                "rtt_ms": {"min": float(rtts[0]), "avg": float(rtts[1]), "max": float(rtts[2])} if len(rtts) == 3 else None,
                "per_round_trip": per_rt,
                "vmm_cpu_us_per_round_trip": (b["vmm_cpu"] - a["vmm_cpu"]) * 1e6 / got,
                "vcpu_thread_cpu_us_per_round_trip": (b["vcpu_cpu"] - a["vcpu_cpu"]) * 1e6 / got
                if b["vcpu_cpu"] is not None else None,
                "backend_cpu_us_per_round_trip": net_cpu,
            }
    return results


def net_markdown(net):
    out = []
    if not net:
        return out
    jobs = sorted({j for r in net.values() for j in r["jobs"]})
    out.append("## Network: ping-pong with the host side\n")
    out.append("The guest sends each ICMP echo as soon as the last reply came back (busybox `ping -A`), "
               "2000 round trips per payload size, one VM per NIC path. The host side is 10.0.2.2: a tap in L1 for the e1000 and "
               "for virtio-net (through build/vhost-user-net's net_tap port), QEMU's user-network gateway in "
               "L0 behind the assigned e1000e: the assigned NIC's round trips therefore cross one more "
               "emulated hop, so compare its exits per round trip, not its rate. Per round trip = one frame "
               "out and one frame in. The e1000 and virtio-net VMs run in a second L1 without the VT-d and SR-IOV "
               "devices (there, under virtio-net traffic, the guest crashed now and then: see the README).\n")
    for job in jobs:
        out.append(f"### {job}\n")
        out.append("| NIC path | round trips/s | RTT avg ms | exits/RT | halt | io | mmio | irq inj/RT | VMM CPU µs/RT | backend CPU µs/RT |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        out += path_rows(net, ("emulated", "virtio", "passthrough"), job, 10,
                         lambda r, j: j.get("error") or r.get("failed") or "no data",
                         lambda j: [fmt(j["round_trips_per_s"], 0), fmt((j["rtt_ms"] or {}).get("avg"), 3),
                                    fmt(j["per_round_trip"]["exits"]), fmt(j["per_round_trip"]["halt_exits"]),
                                    fmt(j["per_round_trip"]["io_exits"]), fmt(j["per_round_trip"]["mmio_exits"]),
                                    fmt(j["per_round_trip"]["irq_injections"]),
                                    fmt(j["vmm_cpu_us_per_round_trip"], 1),
                                    fmt(j["backend_cpu_us_per_round_trip"], 1)])
        out.append("")
    out.append("The design predicts the same ordering as for the disk: the e1000 traps its TX doorbell (TDT) "
               "and its interrupt-cause reads (ICR) on every packet (the `io`/`mmio` columns), virtio-net "
               "and the assigned NIC trap nothing per packet and pay only for interrupt delivery.\n")
    return out


def path_rows(results, paths, job, ncols, why, cells):
    """One table row per path that ran: the job's cells, or "not measured"
    with why(result, job) and empty cells to fill ncols columns."""
    rows = []
    for path in paths:
        r = results.get(path)
        if not r:
            continue
        j = r["jobs"].get(job)
        if not j or "error" in j:
            rows.append(f"| {r['name']} | not measured: {why(r, j or {})} |" + " |" * (ncols - 2))
            continue
        rows.append(f"| {r['name']} | " + " | ".join(cells(j)) + " |")
    return rows


def fmt(v, digits=2):
    if v is None:
        return "-"
    return f"{v:.{digits}f}"


def markdown(env, results, jobs, plots):
    out = []
    out.append("# Three I/O paths, one disk: perf/three-paths\n")
    out.append(f"- Command: `{env.get('command', 'perf/three-paths')}` (commit {env.get('commit', '?')}, {env.get('date', '?')})")
    out.append(f"- Machine: L0 {env.get('l0_cpu', '?')}, {env.get('l0_cpus', '?')} CPUs, kernel {env.get('l0_kernel', '?')}, /dev/kvm: {env.get('l0_kvm', '?')}")
    out.append(f"- Nesting: the guest (L2, 1 vCPU, 1 GiB, Debian {env.get('l1_kernel', '?')}) runs under our VMM with KVM inside L1 "
               f"({env.get('l1_cpus', '?')} vCPUs, {env.get('l1_cpu', '?')}), and L1 runs under QEMU's software emulation (TCG) on L0.")
    out.append(f"- Disk: {env.get('media', '?')} in L1" + (f", the namespace of SR-IOV NVMe PF {env['pf']} (the VF reaches the same namespace)" if env.get('pf') else "")
               + (f"; {env['media_note']}" if env.get('media_note') else ""))
    out.append(f"- Workload: perf/three-paths.fio in the guest, one job at a time, {env.get('runtime', '?')} s each, libaio, O_DIRECT.")
    out.append("")
    out.append("**Absolute rates reflect software emulation (L1 is emulated by TCG), not hardware: "
               "compare paths by ratio within this run. Exits and interrupts per I/O are the portable figures.**")
    out.append("")
    out.append("VM exits and interrupt injections are KVM's own counters for the guest, recorded by the VMM "
               "at the guest's stats marks right before and after each fio job (`stats-marks = on`, port 0x502), "
               "divided by the I/Os fio counted. \"net of idle\" also takes off what the same span costs the "
               "same guest idle (timer ticks, host interrupts: measured between two marks 3 s apart), which "
               "dominates when the disk is slow. VMM CPU is the on-CPU time of the VMM's threads other than "
               "the vCPUs (event loop, I/O: what the VMM itself spends) between the same marks (the vCPU "
               "threads' time, mostly the guest's own, is in report.json); backend CPU (virtio) is the vhost-user-blk process's, sampled by the host at the "
               "guest's console markers (1 s of idling included).")
    out.append("")
    for job in jobs:
        out.append(f"## {job}\n")
        out.append("| path | IOPS | p50 µs | p99 µs | p99.9 µs | exits/IO | net of idle | halt | io | mmio | irq inj/IO | VMM CPU µs/IO | backend CPU µs/IO |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        out += path_rows(results, PATH_ORDER, job, 13,
                         lambda r, j: r.get("unavailable") or r.get("failed") or j.get("error") or "no data",
                         lambda j: [str(j["iops"]), fmt(j["lat_us"].get("p50"), 0), fmt(j["lat_us"].get("p99"), 0),
                                    fmt(j["lat_us"].get("p99.9"), 0), fmt(j["per_io"]["exits"]),
                                    fmt(j["net_of_idle_per_io"]["exits"]), fmt(j["per_io"]["halt_exits"]),
                                    fmt(j["per_io"]["io_exits"]), fmt(j["per_io"]["mmio_exits"]),
                                    fmt(j["per_io"]["irq_injections"]), fmt(j["vmm_cpu_us_per_io"], 1),
                                    fmt(j["backend_cpu_us_per_io"], 1)])
        out.append("")
    out.append("## Exits per I/O by reason (all jobs)\n")
    reasons = None
    for r in results.values():
        for j in r["jobs"].values():
            if "per_io" in j:
                reasons = list(j["per_io"].keys())
                break
        if reasons:
            break
    if reasons:
        out.append("| path | job | " + " | ".join(reasons) + " |")
        out.append("|---|---|" + "---|" * len(reasons))
        for path in PATH_ORDER:
            r = results.get(path)
            if not r:
                continue
            for job in jobs:
                j = r["jobs"].get(job)
                if j and "per_io" in j:
                    out.append(f"| {r['name']} | {job} | " + " | ".join(fmt(j['per_io'][k], 3) for k in reasons) + " |")
        out.append("")
    out.append("## Does the ordering match the design?\n")
    out.append("The design predicts exits per I/O: emulated > virtio ~ passthrough: a classic emulated "
               "controller traps every doorbell write, while virtio (the backend polls the ring, EVENT_IDX "
               "suppresses kicks) and the VF (its doorbells are real hardware) only cost the completion "
               "interrupt and the halt around it. Our emulated NVMe implements shadow doorbells (Doorbell "
               "Buffer Config, `shadow-doorbells = on` by default), which takes its doorbell traps away; the "
               "row with them off is the classic emulated controller.\n")
    for job in jobs:
        vals = {p: results[p]["jobs"][job]["net_of_idle_per_io"]["exits"] for p in PATH_ORDER
                if p in results and job in results[p]["jobs"] and "per_io" in results[p]["jobs"][job]}
        if len(vals) < 2:
            out.append(f"- {job}: fewer than two paths measured.")
            continue
        text = "exits per I/O net of idle: " + ", ".join(f"{PATH_NAMES[p]} {fmt(v)}" for p, v in vals.items())
        classic = vals.get("emulated-noshadow")
        others = [v for p, v in vals.items() if p in ("virtio", "passthrough")]
        if classic is None or not others:
            verdict = "not enough paths to judge"
        elif all(classic > v for v in others):
            verdict = "as predicted (classic emulation costs the most)"
        else:
            verdict = "SURPRISE: see below"
        out.append(f"- {job}: {text}: {verdict}.")
    out.append("")
    out.append("What the counts say. The exits left on every path are interrupt delivery: `irq_injections` "
               "(the completion interrupt, plus the guest's timer), `irq_exits` and `irq_window_exits` "
               "(KVM kicking the vCPU out to inject), `insn_emulation` (accesses KVM emulates in the kernel, "
               "mostly the guest's local-APIC EOI writes after each interrupt: no APIC virtualisation in this "
               "nested setup) and `halt_exits`. They scale with interrupts per I/O, which fall with queue "
               "depth because one interrupt completes several I/Os. The emulated NVMe with shadow doorbells "
               "therefore lands next to virtio: both trap nothing per request; only the interrupt remains. "
               "Where a slow disk leaves the guest idle between completions, timer ticks count too: "
               "\"net of idle\" takes them off.")
    out.append("")
    if plots:
        out.append("## Plots\n")
        for p in plots:
            out.append(f"![{p}]({p})")
        out.append("")
    return "\n".join(out) + "\n"


def gnuplot(outdir, results, jobs, env):
    """Grouped bar charts: one cluster per job, one bar per path."""
    # gnuplot gives up on a whole plot when one column has no number at all.
    paths = [p for p in PATH_ORDER if p in results and
             any("per_io" in results[p]["jobs"].get(j, {}) for j in jobs)]
    if not paths or not jobs:
        return []
    made = []
    caption = (f"{env.get('command', 'perf/three-paths')} - L2 under KVM in L1 ({env.get('l1_kernel', '?')}) "
               f"under TCG on {env.get('l0_cpu', '?')[:40]}")
    for key, title, ylabel, fname, logscale in (
            ("iops", "IOPS per path and job (nested: compare ratios)", "IOPS", "iops.png", False),
            ("p99", "p99 completion latency", "microseconds", "p99-latency.png", True),
            ("exits", "VM exits per I/O", "exits per I/O", "exits-per-io.png", True)):
        data = os.path.join(outdir, fname + ".dat")
        with open(data, "w") as f:
            f.write("job " + " ".join('"' + PATH_NAMES[p] + '"' for p in paths) + "\n")
            for job in jobs:
                row = []
                for p in paths:
                    j = results[p]["jobs"].get(job, {})
                    if "per_io" not in j:
                        row.append("NaN")
                    elif key == "iops":
                        row.append(str(j["iops"]))
                    elif key == "p99":
                        row.append(str(j["lat_us"].get("p99", "NaN")))
                    else:
                        row.append(f"{max(j['per_io']['exits'], 1e-3):.4f}")
                f.write(job + " " + " ".join(row) + "\n")
        script = f"""
set terminal pngcairo size 960,540 font ",10" noenhanced
set output '{os.path.join(outdir, fname)}'
set title "{title}\\n{caption}"
set style data histograms
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set key outside top center horizontal autotitle columnheader
set ylabel "{ylabel}"
set grid ytics
{"set logscale y" if logscale else "set yrange [0:*]"}
plot for [i=2:{len(paths) + 1}] '{data}' using i:xtic(1)
"""
        r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
        if r.returncode == 0 and os.path.exists(os.path.join(outdir, fname)):
            made.append(fname)
        else:
            print(f"three-paths-report: gnuplot failed for {fname}: {r.stderr.strip()[:300]}", file=sys.stderr)
    return made


def main():
    if len(sys.argv) != 2:
        print("usage: three-paths-report.py RESULTS_FOLDER", file=sys.stderr)
        return 2
    outdir = sys.argv[1]
    env = read_env(os.path.join(outdir, "machine.env"))
    raw = os.path.join(outdir, "raw")
    cols = open(os.path.join(raw, "columns")).read().split("=", 1)[1].split()
    columns = cols[:cols.index("vmm_ticks")]
    tick = float(env.get("tick", 100))
    jobs = [j for j in env.get("jobs", "").split(",") if j]
    results = storage_results(raw, columns, tick)
    net = net_results(raw, columns, tick)
    plots = gnuplot(outdir, results, jobs, env)
    report = {"machine": env, "storage": results, "network": net, "plots": plots}
    json.dump(report, open(os.path.join(outdir, "report.json"), "w"), indent=2)
    md = markdown(env, results, jobs, plots)
    if net:
        md = md.replace("## Plots\n", "\n".join(net_markdown(net)) + "\n## Plots\n", 1) if "## Plots\n" in md \
            else md + "\n".join(net_markdown(net)) + "\n"
    open(os.path.join(outdir, "report.md"), "w").write(md)
    print(md)
    print(f"three-paths: report: {os.path.join(outdir, 'report.md')} (+ report.json, {', '.join(plots) or 'no plots'})")
    measured = sum(1 for r in results.values() for j in r["jobs"].values() if "per_io" in j)
    return 0 if measured else 1


if __name__ == "__main__":
    sys.exit(main())
