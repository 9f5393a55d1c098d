#!/usr/bin/env python3
"""On-disk bytes per sample for the same imported data: vigie against Prometheus 2.42
(promtool tsdb create-blocks-from) and VictoriaMetrics 1.79, side by side.

Generates one deterministic OpenMetrics file (--seed) that looks like N node_exporter 1.5
targets on small 2-CPU VMs scraped every 15 s: per target 568 series, the mix modelled on a
real node_exporter scraped twice 15 s apart (72 % integer constants, 13 % changing integers,
12 % short floats, 2 % float constants, 0.4 % full-precision floats there): here 71 %
integer constants (a handful flip once in 2 h), 13 % integer counters and gauges changing
every scrape (bytes, packets, page faults, memory in pages), 12 % floats with few
significant digits (collector durations in ns, load, cpu seconds in 1/100 s, pressure in µs,
disk times as ms * 0.001), 2 % full-precision floats (node_time_seconds, float sums,
schedstat ns counters, file mtimes), 2 % float constants. One timestamp per target scrape
(30 % of scrapes off the grid by 1-3 ms), the grid offset random within the interval. The
data starts on a 2 h boundary, so the default covers exactly one block.

Then: `vigie import openmetrics FILE --data-dir DIR` and `promtool tsdb create-blocks-from
openmetrics FILE DIR` (bytes of chunks and of index, samples from meta.json), and
VictoriaMetrics fed the same samples through /api/v1/import/prometheus (ms timestamps),
flushed, counted back with a query, restarted (its shutdown writes the in-memory parts that
force_flush leaves in memory), force-merged down to one part per partition and measured
after a clean stop (bytes of data/ and of indexdb/). Every store's sample count must equal
the generated one. VictoriaMetrics' values are also compared with the first target's: its
float-to-decimal conversion is lossy for full-precision floats, which the report counts.
VictoriaMetrics is skipped with a message when its binary is missing.

Usage: cargo build --release && python3 benches/disk.py [--targets 20] [--hours 2] [--seed 1]
       [--interval 15] [--json] [--keep] [--vigie PATH]
"""
import argparse, json, os, random, re, shutil, signal, subprocess, sys, tempfile, time
import urllib.parse, urllib.request

from benchlib import TARGET_DIR, free_port, get, wait_http
BLOCK_S = 7200
MB = 1e6
out = sys.stdout  # the human-readable report; stderr when --json owns stdout


def say(*a):
    print(*a, file=out, flush=True)


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except FileNotFoundError:  # VictoriaMetrics removes merged parts as we walk
                pass
    return total


# ---------------------------------------------------------------------------------------
# Value generators: gen(r, n, ts) -> n value strings, ts the series' n timestamps in ms.

def fmt(v):
    return str(v) if isinstance(v, int) else repr(v)


def const(v):
    s = fmt(v)
    return lambda r, n, ts: [s] * n


def rare(a, b):
    """a constant that flips between a and b about once in 2 h"""
    sa, sb = fmt(a), fmt(b)

    def g(r, n, ts):
        span = (ts[-1] - ts[0]) / 1000 if n > 1 else 0
        flips = sorted(r.sample(range(1, n), min(n - 1, max(1, round(span / BLOCK_S))))) if n > 1 else []
        vals, cur, last = [], sa, 0
        for f in flips + [n]:
            vals += [cur] * (f - last)
            cur, last = (sb if cur == sa else sa), f
        return vals
    return g


def counter(start, mean, idle=0.0, unit=1):
    """integer counter; each scrape adds unit * Exp(mean) (at least one unit), or nothing
    with probability idle"""
    def g(r, n, ts):
        v, vals = start, []
        for _ in range(n):
            if idle == 0 or r.random() >= idle:
                v += unit * max(1, int(r.expovariate(1 / mean)))
            vals.append(str(v))
        return vals
    return g


def walk(start, step, unit=1, lo=0, idle=0.0):
    """integer gauge in multiples of unit doing a random walk of up to step units a scrape"""
    def g(r, n, ts):
        v, vals = start // unit, []
        for _ in range(n):
            if idle == 0 or r.random() >= idle:
                v = max(lo // unit, v + r.randint(-step, step))
            vals.append(str(v * unit))
        return vals
    return g


def scaled_counter(start, mean, scale, idle=0.0):
    """a float counter that is an integer count of 1/scale units (cpu seconds in 1/100 s,
    pressure in µs, schedstat in ns), written as count/scale"""
    def g(r, n, ts):
        v, vals = start, []
        for _ in range(n):
            if idle == 0 or r.random() >= idle:
                v += max(1, int(r.expovariate(1 / mean)))
            vals.append(repr(v / scale))
        return vals
    return g


def ms_counter(start, mean, idle=0.0):
    """node_exporter's disk times: a count of ms times 0.001 (mostly short decimals like
    368.729, about one value in eight like 585.6750000000001)"""
    def g(r, n, ts):
        v, vals = start, []
        for _ in range(n):
            if idle == 0 or r.random() >= idle:
                v += max(1, int(r.expovariate(1 / mean)))
            vals.append(repr(v * 0.001))
        return vals
    return g


def mtime(period_s):
    """a file's mtime in float seconds with ns digits, rewritten every period_s"""
    def g(r, n, ts):
        phase, vals, cur, last = r.randint(0, period_s * 1000), [], None, None
        for t in ts:
            k = (t - phase) // (period_s * 1000)
            if k != last:
                cur, last = repr(((k * period_s * 1000 + phase) * 1_000_000 + r.randint(0, 999_999_999)) / 1e9), k
            vals.append(cur)
        return vals
    return g


def ratio_walk(start):
    """chrony's frequency adjustment: a full-precision ratio near 1 nudged every few scrapes"""
    def g(r, n, ts):
        k, vals = start, []
        for _ in range(n):
            if r.random() < 0.25:
                k += r.randint(-400, 400)
            vals.append(repr(1 + k / 65536 / 1e6))  # the kernel's freq: ppm with a 16-bit fraction
        return vals
    return g


def duration(center_ns):
    """a scrape duration measured in ns, written in seconds (2.2439e-05, 0.000131566)"""
    return lambda r, n, ts: [repr(max(1, int(center_ns * r.lognormvariate(0, 0.35))) / 1e9) for _ in range(n)]


def load(start):
    """a load average: 2 decimals, random walk"""
    def g(r, n, ts):
        h, vals = int(start * 100), []
        for _ in range(n):
            h = max(0, h + r.randint(-6, 6))
            vals.append(repr(h / 100))
        return vals
    return g


def time_seconds():
    """node_time_seconds: the scrape time plus the collection delay, with ns digits"""
    return lambda r, n, ts: [repr((t * 1_000_000 + r.randint(80_000, 2_000_000)) / 1e9) for t in ts]


def float_sum(start, mean, step, idle=0.0):
    """a float counter accumulated by float additions (366.81100000000004)"""
    def g(r, n, ts):
        x, vals = start, []
        for _ in range(n):
            if idle == 0 or r.random() >= idle:
                x += max(1, int(r.expovariate(1 / mean))) * step
            vals.append(repr(x))
        return vals
    return g


# ---------------------------------------------------------------------------------------
# One target's series, modelled on prometheus-node-exporter 1.5 on a 2-CPU VM.
# Kinds: const (integer constant, incl. rare flips), int (changing integers), short (floats
# with few significant digits), full (full-precision floats), fconst (float constants).

CPUS = ["0", "1"]
DISKS = ["vda", "vdb"]  # vdb: mostly idle, occasional bumps
NICS = ["eth0", "eth1", "lo", "docker0"]  # eth1, docker0: down
FILESYSTEMS = [("/dev/vda1", "ext4", "/"), ("/dev/vda15", "vfat", "/boot/efi"), ("/dev/vdb", "xfs", "/srv"),
               ("tmpfs", "tmpfs", "/run")]
COLLECTORS = ("arp bcache bonding btrfs conntrack cpu cpufreq diskstats dmi edac entropy fibrechannel "
              "filefd filesystem hwmon infiniband ipvs loadavg mdadm meminfo netclass netdev netstat nfs "
              "nfsd nvme os powersupplyclass pressure rapl schedstat selinux sockstat softnet stat systemd "
              "tapestats textfile thermal_zone time timex udp_queues uname vmstat xfs zfs").split()
PAGE = 4096
GiB = 1 << 30


def catalog(r):
    """[(family, type, [(sample name, labels, kind, gen)])]: the same structure for every
    target (r only picks the target's own constants)"""
    fams = []

    def fam(name, typ, series):
        # counters: the family is named without _total, the samples with it (OpenMetrics)
        family = name[:-6] if typ == "counter" and name.endswith("_total") else name
        fams.append((family, typ, [(name, lab, kind, gen) for lab, kind, gen in series]))

    def one(name, typ, kind, gen):
        fam(name, typ, [("", kind, gen)])

    boot = 1_700_000_000 + r.randint(0, 90_000_000)
    mem_total = r.choice([4, 8, 16, 32]) * GiB - r.randint(20_000, 60_000) * PAGE
    ncpu = len(CPUS)

    # node_exporter's own Go runtime
    fam("go_gc_duration_seconds", "summary",
        [(f'quantile="{q}",', "fconst", rare(r.randint(9_000, 60_000) / 1e9, r.randint(9_000, 60_000) / 1e9))
         for q in ("0", "0.25", "0.5", "0.75", "1")])
    fams[-1][2].append(("go_gc_duration_seconds_sum", "", "full", float_sum(0.3, 40_000, 1e-9, idle=0.85)))
    fams[-1][2].append(("go_gc_duration_seconds_count", "", "int", counter(r.randint(50, 900), 1, idle=0.85)))
    one("go_goroutines", "gauge", "const", const(8))
    one("go_info", "gauge", "const", const(1))
    fams[-1][2][0] = ("go_info", 'version="go1.19.8",', "const", const(1))
    heap = r.randint(2_000, 4_000) * PAGE
    for name, kind, gen in [
            ("go_memstats_alloc_bytes", "int", walk(heap, 300, 8)),
            ("go_memstats_alloc_bytes_total", "int", counter(r.randint(10**8, 10**10), 900_000)),
            ("go_memstats_buck_hash_sys_bytes", "const", const(1_457_360)),
            ("go_memstats_frees_total", "int", counter(r.randint(10**6, 10**8), 9_000)),
            ("go_memstats_gc_sys_bytes", "const", const(8_603_888)),
            ("go_memstats_heap_alloc_bytes", "int", walk(heap, 300, 8)),
            ("go_memstats_heap_idle_bytes", "int", walk(3_000 * PAGE, 4, 2 * PAGE)),
            ("go_memstats_heap_inuse_bytes", "int", walk(heap, 4, 2 * PAGE)),
            ("go_memstats_heap_objects", "int", walk(20_000, 300)),
            ("go_memstats_heap_released_bytes", "const", rare(2_000 * PAGE, 1_900 * PAGE)),
            ("go_memstats_heap_sys_bytes", "const", const(11_730_944)),
            ("go_memstats_last_gc_time_seconds", "const", const(0)),
            ("go_memstats_lookups_total", "const", const(0)),
            ("go_memstats_mallocs_total", "int", counter(r.randint(10**6, 10**8), 9_100)),
            ("go_memstats_mcache_inuse_bytes", "const", const(4_800)),
            ("go_memstats_mcache_sys_bytes", "const", const(15_600)),
            ("go_memstats_mspan_inuse_bytes", "const", const(110_160)),
            ("go_memstats_mspan_sys_bytes", "const", const(130_560)),
            ("go_memstats_next_gc_bytes", "const", rare(6_029_312, 6_321_152)),
            ("go_memstats_other_sys_bytes", "const", const(1_075_088)),
            ("go_memstats_stack_inuse_bytes", "const", const(655_360)),
            ("go_memstats_stack_sys_bytes", "const", const(655_360)),
            ("go_memstats_sys_bytes", "const", const(24_724_488))]:
        one(name, "counter" if name.endswith("_total") else "gauge", kind, gen)
    one("go_threads", "gauge", "const", const(7))

    fam("node_arp_entries", "gauge", [('device="eth0",', "const", rare(2, 3))])
    one("node_boot_time_seconds", "gauge", "const", const(boot))
    one("node_context_switches_total", "counter", "int", counter(r.randint(10**6, 10**9), 4_000))
    fam("node_cpu_frequency_max_hertz", "gauge", [(f'cpu="{c}",', "const", const(3_500_000_000)) for c in CPUS])
    fam("node_cpu_frequency_min_hertz", "gauge", [(f'cpu="{c}",', "const", const(800_000_000)) for c in CPUS])
    fam("node_cpu_scaling_frequency_hertz", "gauge", [(f'cpu="{c}",', "const", const(2_899_998_000)) for c in CPUS])
    fam("node_cpu_guest_seconds_total", "counter",
        [(f'cpu="{c}",mode="{m}",', "const", const(0)) for c in CPUS for m in ("nice", "user")])
    cpu = []
    for c in CPUS:
        cpu += [(f'cpu="{c}",mode="idle",', "short", scaled_counter(r.randint(10**6, 10**8), 1_350, 100)),
                (f'cpu="{c}",mode="iowait",', "short", scaled_counter(r.randint(500, 9_000), 3, 100, idle=0.5)),
                (f'cpu="{c}",mode="irq",', "const", const(0)),
                (f'cpu="{c}",mode="nice",', "const", const(0)),
                (f'cpu="{c}",mode="softirq",', "short", scaled_counter(r.randint(200, 900), 2, 100, idle=0.6)),
                (f'cpu="{c}",mode="steal",', "fconst", rare(r.randint(10, 99) / 100, r.randint(100, 150) / 100)),
                (f'cpu="{c}",mode="system",', "short", scaled_counter(r.randint(10**4, 10**6), 30, 100)),
                (f'cpu="{c}",mode="user",', "short", scaled_counter(r.randint(10**5, 10**7), 110, 100))]
    fam("node_cpu_seconds_total", "counter", cpu)

    def disk(name, typ, busy, idle):
        fam(name, typ, [(f'device="{DISKS[0]}",', *busy), (f'device="{DISKS[1]}",', *idle)])

    zero = ("const", const(0))
    disk("node_disk_discard_time_seconds_total", "counter", ("fconst", const(r.randint(1_000, 20_000) / 1000)), zero)
    disk("node_disk_discarded_sectors_total", "counter", ("const", const(r.randint(10**6, 10**8))), zero)
    disk("node_disk_discards_completed_total", "counter", ("const", const(r.randint(10**3, 10**5))), zero)
    disk("node_disk_discards_merged_total", "counter", ("const", const(r.randint(10, 100))), zero)
    disk("node_disk_flush_requests_time_seconds_total", "counter", ("fconst", const(r.randint(100, 999) / 1000)), zero)
    disk("node_disk_flush_requests_total", "counter", ("int", counter(r.randint(10**3, 10**5), 2, idle=0.8)), zero)
    fam("node_disk_info", "gauge", [(f'device="{d}",major="254",minor="{i * 16}",model="",path="pci-0000:00:0{i + 4}.0",'
                                     f'revision="",serial="",wwn="",', "const", const(1)) for i, d in enumerate(DISKS)])
    disk("node_disk_io_now", "gauge", ("const", rare(0, 1)), zero)
    disk("node_disk_io_time_seconds_total", "counter", ("short", ms_counter(r.randint(10**4, 10**6), 40)), zero)
    disk("node_disk_io_time_weighted_seconds_total", "counter",
         ("full", float_sum(r.randint(10**4, 10**6) / 1000, 60, 0.001)),
         ("full", float_sum(r.randint(10**2, 10**4) / 1000, 30, 0.001, 0.97)))
    disk("node_disk_read_bytes_total", "counter", ("int", counter(r.randint(10**9, 10**11) // 512 * 512, 40, 0.6, 512)),
         ("int", counter(r.randint(10**6, 10**8) // 512 * 512, 8, 0.97, 4096)))
    disk("node_disk_read_time_seconds_total", "counter", ("short", ms_counter(r.randint(10**5, 10**6), 20, 0.6)), zero)
    disk("node_disk_reads_completed_total", "counter", ("int", counter(r.randint(10**5, 10**6), 3, 0.6)),
         ("int", counter(r.randint(100, 10**4), 1, 0.97)))
    disk("node_disk_reads_merged_total", "counter", ("int", counter(r.randint(10**4, 10**5), 2, 0.8)), zero)
    disk("node_disk_write_time_seconds_total", "counter", ("short", ms_counter(r.randint(10**5, 10**6), 25)), zero)
    disk("node_disk_writes_completed_total", "counter", ("int", counter(r.randint(10**5, 10**6), 6)),
         ("int", counter(r.randint(100, 10**4), 2, 0.97)))
    disk("node_disk_writes_merged_total", "counter", ("int", counter(r.randint(10**4, 10**5), 4, 0.3)), zero)
    disk("node_disk_written_bytes_total", "counter", ("int", counter(r.randint(10**9, 10**11) // 512 * 512, 60, 0, 512)),
         ("int", counter(r.randint(10**6, 10**8) // 512 * 512, 16, 0.97, 4096)))
    one("node_entropy_available_bits", "gauge", "const", const(256))
    one("node_entropy_pool_size_bits", "gauge", "const", const(256))
    fam("node_exporter_build_info", "gauge", [('branch="debian/sid",goarch="amd64",goos="linux",goversion="go1.19.8",'
                                               'revision="1.5.0-1+b6",version="1.5.0",', "const", const(1))])
    one("node_filefd_allocated", "gauge", "int", walk(r.randint(300, 3000), 4))
    one("node_filefd_maximum", "gauge", "const", const(9_223_372_036_854_775_807 if r.random() < 0.5 else 2_466_116))

    fs_size = [r.randint(20, 500) * GiB // PAGE * PAGE, 109_422_592, r.randint(100, 2000) * GiB // PAGE * PAGE,
               mem_total // 10 // PAGE * PAGE]
    fs_free = [s // r.randint(2, 5) // PAGE * PAGE for s in fs_size]
    fs_free[3] = fs_size[3] - r.randint(200, 400) * PAGE

    def fs(name, per):
        fam(name, "gauge", [(f'device="{d}",fstype="{t}",mountpoint="{m}",', *per(i)) for i, (d, t, m) in enumerate(FILESYSTEMS)])

    def free(i, reserved):  # / and /srv change every scrape, /boot/efi never, /run rarely
        if i == 1:
            return "const", const(fs_free[i])
        if i == 3:
            return "const", rare(fs_free[i], fs_free[i] - PAGE)
        return "int", walk(fs_free[i] - reserved * (fs_size[i] // 20 // PAGE * PAGE), 40, PAGE)

    fs("node_filesystem_avail_bytes", lambda i: free(i, 1))
    fs("node_filesystem_device_error", lambda i: zero)
    fs("node_filesystem_files", lambda i: ("const", const(fs_size[i] // 16384)))
    fs("node_filesystem_files_free", lambda i: ("int", walk(fs_size[i] // 16384 - r.randint(10**4, 10**6), 3))
       if i == 0 else ("const", const(fs_size[i] // 16384 - 812)))
    fs("node_filesystem_free_bytes", lambda i: free(i, 0))
    fs("node_filesystem_readonly", lambda i: zero)
    fs("node_filesystem_size_bytes", lambda i: ("const", const(fs_size[i])))
    one("node_forks_total", "counter", "int", counter(r.randint(10**4, 10**7), 12))
    one("node_intr_total", "counter", "int", counter(r.randint(10**6, 10**9), 2_500))
    one("node_load1", "gauge", "short", load(r.randint(0, 150) / 100))
    one("node_load15", "gauge", "short", load(r.randint(0, 150) / 100))
    one("node_load5", "gauge", "short", load(r.randint(0, 150) / 100))

    def mem_walk(frac, step):
        return "int", walk(int(mem_total * frac) // PAGE * PAGE, step, PAGE)

    for name, (kind, gen) in [
            ("Active_anon", mem_walk(0.05, 30)), ("Active", mem_walk(0.2, 40)), ("Active_file", mem_walk(0.15, 20)),
            ("AnonHugePages", zero), ("AnonPages", mem_walk(0.06, 30)), ("Balloon", zero), ("Bounce", zero),
            ("Buffers", mem_walk(0.01, 2)), ("Cached", mem_walk(0.3, 25)), ("CommitLimit", ("const", const(mem_total // 2))),
            ("Committed_AS", mem_walk(0.12, 60)), ("DirectMap1G", ("const", const(mem_total // GiB * GiB))),
            ("DirectMap2M", ("const", const(2_120_220_672))), ("DirectMap4k", ("const", const(27_262_976))),
            ("Dirty", ("int", walk(40 * PAGE, 12, PAGE))), ("FileHugePages", ("const", const(41_943_040))),
            ("FilePmdMapped", zero), ("HugePages_Free", zero), ("HugePages_Rsvd", zero), ("HugePages_Surp", zero),
            ("HugePages_Total", zero), ("Hugepagesize", ("const", const(2_097_152))), ("Hugetlb", zero),
            ("Inactive_anon", ("const", rare(1736 * PAGE, 1737 * PAGE))), ("Inactive", mem_walk(0.25, 30)), ("Inactive_file", mem_walk(0.23, 25)),
            ("KReclaimable", mem_walk(0.02, 6)), ("KernelStack", ("const", rare(348 * PAGE, 352 * PAGE))),
            ("Mapped", ("const", rare(7575 * PAGE, 7581 * PAGE))), ("MemAvailable", mem_walk(0.6, 80)), ("MemFree", mem_walk(0.3, 80)),
            ("MemTotal", ("const", const(mem_total))), ("Mlocked", ("const", const(2432 * PAGE))),
            ("NFS_Unstable", zero), ("PageTables", ("const", rare(327 * PAGE, 329 * PAGE))),
            ("Percpu", ("const", const(186 * PAGE))), ("SReclaimable", mem_walk(0.02, 6)),
            ("SUnreclaim", ("int", walk(7315 * PAGE, 5, PAGE))), ("SecPageTables", zero), ("ShmemHugePages", zero),
            ("ShmemPmdMapped", zero), ("Shmem", ("const", const(2339 * PAGE))), ("Slab", mem_walk(0.025, 8)),
            ("SwapCached", zero), ("SwapFree", zero), ("SwapTotal", zero), ("Unevictable", ("const", const(2694 * PAGE))),
            ("VmallocChunk", zero), ("VmallocTotal", ("const", const(35_184_372_087_808))),
            ("VmallocUsed", ("const", const(3547 * PAGE))), ("WritebackTmp", zero), ("Writeback", zero),
            ("Zswap", zero), ("Zswapped", zero)]:
        one(f"node_memory_{name}" + ("" if name.startswith("HugePages_") else "_bytes"), "gauge", kind, gen)

    changing = {"IpExt_InOctets": counter(r.randint(10**8, 10**11), 60_000),
                "IpExt_OutOctets": counter(r.randint(10**8, 10**11), 40_000),
                "Tcp_ActiveOpens": counter(r.randint(10**3, 10**6), 3, 0.3),
                "Tcp_InSegs": counter(r.randint(10**5, 10**8), 90),
                "Tcp_OutSegs": counter(r.randint(10**5, 10**8), 80),
                "Tcp_PassiveOpens": counter(r.randint(10**3, 10**6), 3, 0.3),
                "Udp_InDatagrams": counter(r.randint(100, 10**5), 2, 0.8),
                "Udp_OutDatagrams": counter(r.randint(100, 10**5), 2, 0.8)}
    for name in ("Icmp6_InErrors Icmp6_InMsgs Icmp6_OutMsgs Icmp_InErrors Icmp_InMsgs Icmp_OutMsgs Ip6_InOctets "
                 "Ip6_OutOctets IpExt_InOctets IpExt_OutOctets Ip_Forwarding TcpExt_ListenDrops TcpExt_ListenOverflows "
                 "TcpExt_SyncookiesFailed TcpExt_SyncookiesRecv TcpExt_SyncookiesSent TcpExt_TCPSynRetrans "
                 "TcpExt_TCPTimeouts Tcp_ActiveOpens Tcp_CurrEstab Tcp_InErrs Tcp_InSegs Tcp_OutRsts Tcp_OutSegs "
                 "Tcp_PassiveOpens Tcp_RetransSegs Udp6_InDatagrams Udp6_InErrors Udp6_NoPorts Udp6_OutDatagrams "
                 "Udp6_RcvbufErrors Udp6_SndbufErrors UdpLite6_InErrors UdpLite_InErrors Udp_InDatagrams Udp_InErrors "
                 "Udp_NoPorts Udp_OutDatagrams Udp_RcvbufErrors Udp_SndbufErrors").split():
        if name in changing:
            one(f"node_netstat_{name}", "unknown", "int", changing[name])
        elif name == "Tcp_CurrEstab":
            one(f"node_netstat_{name}", "unknown", "const", rare(2, 3))
        else:
            one(f"node_netstat_{name}", "unknown", "const", const(r.choice([0, 0, 0, r.randint(1, 2000)])))

    macs = {"eth0": "02:fc:%02x:%02x:00:01" % (r.randint(0, 255), r.randint(0, 255)),
            "eth1": "02:fc:%02x:%02x:00:02" % (r.randint(0, 255), r.randint(0, 255)), "lo": "00:00:00:00:00:00",
            "docker0": "02:42:%02x:%02x:%02x:%02x" % tuple(r.randint(0, 255) for _ in range(4))}
    nic_const = {  # family: (eth0, eth1, lo, docker0)
        "address_assign_type": (0, 0, 0, 3), "carrier": (1, 0, 1, 0), "carrier_changes_total": (2, 1, 0, 1),
        "carrier_down_changes_total": (1, 1, 0, 1), "carrier_up_changes_total": (1, 0, 0, 0),
        "device_id": (0, 0, 0, 0), "dormant": (0, 0, 0, 0), "flags": (4099, 4098, 9, 4099), "iface_id": (2, 3, 1, 4),
        "iface_link": (2, 3, 1, 4), "iface_link_mode": (0, 0, 0, 0), "mtu_bytes": (1500, 1500, 65536, 1500),
        "name_assign_type": (4, 4, 2, 3), "net_dev_group": (0, 0, 0, 0), "protocol_type": (1, 1, 772, 1),
        "speed_bytes": (1_250_000_000, -125_000, None, None), "transmit_queue_length": (1000, 1000, 1000, 0),
        "up": (1, 0, 1, 0)}
    nic_counters = ("receive_bytes receive_compressed receive_drop receive_errs receive_fifo receive_frame "
                    "receive_multicast receive_nohandler receive_packets transmit_bytes transmit_carrier "
                    "transmit_colls transmit_compressed transmit_drop transmit_errs transmit_fifo transmit_packets").split()
    nic_busy = {("eth0", "receive_bytes"): counter(r.randint(10**8, 10**11), 70_000),
                ("eth0", "receive_packets"): counter(r.randint(10**6, 10**8), 120),
                ("eth0", "transmit_bytes"): counter(r.randint(10**8, 10**11), 45_000),
                ("eth0", "transmit_packets"): counter(r.randint(10**6, 10**8), 100),
                ("eth0", "receive_multicast"): counter(r.randint(10, 1000), 1, 0.9),
                ("eth0", "receive_drop"): counter(r.randint(0, 100), 1, 0.98),
                ("lo", "receive_bytes"): counter(r.randint(10**6, 10**9), 9_000),
                ("lo", "receive_packets"): counter(r.randint(10**4, 10**7), 40),
                ("lo", "transmit_bytes"): counter(r.randint(10**6, 10**9), 9_000),
                ("lo", "transmit_packets"): counter(r.randint(10**4, 10**7), 40)}
    families = sorted(list(nic_const) + ["info"] + [c + "_total" for c in nic_counters])
    for f in families:
        name = f"node_network_{f}"
        if f == "info":
            fam(name, "gauge", [(f'address="{macs[d]}",broadcast="{"00:00:00:00:00:00" if d == "lo" else "ff:ff:ff:ff:ff:ff"}",'
                                 f'device="{d}",duplex="{"full" if d == "eth0" else ""}",ifalias="",'
                                 f'operstate="{"up" if d == "eth0" else "unknown" if d == "lo" else "down"}",',
                                 "const", const(1)) for d in NICS])
        elif f in nic_const:
            fam(name, "counter" if f.endswith("_total") else "gauge",
                [(f'device="{d}",', "const", const(v)) for d, v in zip(NICS, nic_const[f]) if v is not None])
        else:
            base = f[:-6]
            fam(name, "counter", [(f'device="{d}",', "int", nic_busy[(d, base)]) if (d, base) in nic_busy
                                  else (f'device="{d}",', "const", const(0)) for d in NICS])

    for name, v in [("entries", 0), ("entries_limit", 262_144), ("stat_drop", 0), ("stat_early_drop", 0),
                    ("stat_found", 0), ("stat_ignore", 0), ("stat_insert", 0), ("stat_insert_failed", 0),
                    ("stat_invalid", 0), ("stat_search_restart", 0)]:
        one(f"node_nf_conntrack_{name}", "gauge", "const", const(v))
    fam("node_os_info", "gauge", [('build_id="",id="debian",id_like="",image_id="",image_version="",name="Debian GNU/Linux",'
                                   'pretty_name="Debian GNU/Linux 12 (bookworm)",variant="",variant_id="",version="12 (bookworm)",'
                                   'version_codename="bookworm",version_id="12",', "const", const(1))])
    fam("node_os_version", "gauge", [('id="debian",id_like="",name="Debian GNU/Linux",', "const", const(12))])
    one("node_pressure_cpu_waiting_seconds_total", "counter", "short", scaled_counter(r.randint(10**7, 10**9), 9_000, 10**6))
    one("node_pressure_io_stalled_seconds_total", "counter", "short", scaled_counter(r.randint(10**7, 10**8), 2_000, 10**6, 0.3))
    one("node_pressure_io_waiting_seconds_total", "counter", "short", scaled_counter(r.randint(10**7, 10**8), 2_500, 10**6, 0.3))
    one("node_pressure_memory_stalled_seconds_total", "counter", "const", const(0))
    one("node_pressure_memory_waiting_seconds_total", "counter", "const", const(0))
    one("node_procs_blocked", "gauge", "const", rare(0, 1))
    one("node_procs_running", "gauge", "const", rare(1, 2))
    fam("node_schedstat_running_seconds_total", "counter",
        [(f'cpu="{c}",', "full", scaled_counter(r.randint(10**12, 10**14), 800_000_000, 10**9)) for c in CPUS])
    fam("node_schedstat_timeslices_total", "counter",
        [(f'cpu="{c}",', "int", counter(r.randint(10**6, 10**8), 700)) for c in CPUS])
    fam("node_schedstat_waiting_seconds_total", "counter",
        [(f'cpu="{c}",', "full", scaled_counter(r.randint(10**11, 10**13), 60_000_000, 10**9)) for c in CPUS])
    centers = {c: r.randint(8_000, 400_000) for c in COLLECTORS}
    fam("node_scrape_collector_duration_seconds", "gauge",
        [(f'collector="{c}",', "short", duration(centers[c])) for c in COLLECTORS])
    fam("node_scrape_collector_success", "gauge",
        [(f'collector="{c}",', "const", const(0 if c in ("ipvs", "zfs") else 1)) for c in COLLECTORS])
    one("node_selinux_enabled", "gauge", "const", const(0))
    for name, v in [("FRAG6_inuse", 0), ("FRAG6_memory", 0), ("FRAG_inuse", 0), ("FRAG_memory", 0), ("RAW6_inuse", 0),
                    ("RAW_inuse", 0), ("TCP6_inuse", 2), ("TCP_alloc", 6), ("TCP_inuse", None), ("TCP_mem", 2),
                    ("TCP_mem_bytes", 8192), ("TCP_orphan", 0), ("TCP_tw", 1), ("UDP6_inuse", 0), ("UDPLITE6_inuse", 0),
                    ("UDPLITE_inuse", 0), ("UDP_inuse", 2), ("UDP_mem", 1), ("UDP_mem_bytes", 4096), ("sockets_used", None)]:
        if name == "sockets_used":
            one(f"node_sockstat_{name}", "gauge", "int", walk(r.randint(100, 900), 3))
        elif v is None:
            one(f"node_sockstat_{name}", "gauge", "const", rare(4, 5))
        else:
            one(f"node_sockstat_{name}", "gauge", "const", const(v))
    fam("node_softnet_dropped_total", "counter", [(f'cpu="{c}",', "const", const(0)) for c in CPUS])
    fam("node_softnet_processed_total", "counter", [(f'cpu="{c}",', "int", counter(r.randint(10**5, 10**8), 180)) for c in CPUS])
    fam("node_softnet_times_squeezed_total", "counter", [(f'cpu="{c}",', "const", const(r.randint(0, 9))) for c in CPUS])
    fam("node_textfile_mtime_seconds", "gauge", [(f'file="/var/lib/prometheus/node-exporter/{f}.prom",', "full", mtime(p))
                                                 for f, p in (("apt", 900), ("smartmon", 300))])
    one("node_textfile_scrape_error", "gauge", "const", const(0))
    fam("node_time_clocksource_available_info", "gauge",
        [(f'clocksource="{s}",device="0",', "const", const(1)) for s in ("acpi_pm", "hpet", "kvm-clock", "tsc")])
    fam("node_time_clocksource_current_info", "gauge", [('clocksource="kvm-clock",device="0",', "const", const(1))])
    one("node_time_seconds", "gauge", "full", time_seconds())
    fam("node_time_zone_offset_seconds", "gauge", [('time_zone="UTC",', "const", const(0))])
    for name, kind, gen in [
            ("estimated_error_seconds", "const", const(0)),
            ("frequency_adjustment_ratio", "full", ratio_walk(r.randint(-3_000_000, 3_000_000))),
            ("loop_time_constant", "const", const(7)), ("maxerror_seconds", "const", const(0)),
            ("offset_seconds", "const", const(0)), ("pps_calibration_total", "const", const(0)),
            ("pps_error_total", "const", const(0)), ("pps_frequency_hertz", "const", const(0)),
            ("pps_jitter_seconds", "const", const(0)), ("pps_jitter_total", "const", const(0)),
            ("pps_shift_seconds", "const", const(0)), ("pps_stability_exceeded_total", "const", const(0)),
            ("pps_stability_hertz", "const", const(0)), ("status", "const", const(8193)),
            ("sync_status", "const", const(1)), ("tai_offset_seconds", "const", const(0)),
            ("tick_seconds", "fconst", const(0.01))]:
        one(f"node_timex_{name}", "counter" if name.endswith("_total") else "gauge", kind, gen)
    fam("node_udp_queues", "gauge", [(f'ip="{ip}",queue="{q}",', "const", const(0)) for ip in ("v4", "v6") for q in ("rx", "tx")])
    fam("node_uname_info", "gauge", [(f'domainname="(none)",machine="x86_64",nodename="host-{r.randint(100, 999)}",'
                                      'release="6.1.0-18-amd64",sysname="Linux",version="#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1",',
                                      "const", const(1))])
    one("node_vmstat_oom_kill", "unknown", "const", const(0))
    one("node_vmstat_pgfault", "unknown", "int", counter(r.randint(10**7, 10**10), 9_000))
    one("node_vmstat_pgmajfault", "unknown", "int", counter(r.randint(10**4, 10**6), 3, 0.7))
    one("node_vmstat_pgpgin", "unknown", "int", counter(r.randint(10**7, 10**9), 80, 0.5))
    one("node_vmstat_pgpgout", "unknown", "int", counter(r.randint(10**7, 10**9), 300))
    one("node_vmstat_pswpin", "unknown", "const", const(0))
    one("node_vmstat_pswpout", "unknown", "const", const(0))
    one("process_cpu_seconds_total", "counter", "short", scaled_counter(r.randint(1_000, 90_000), 2, 100, 0.3))
    one("process_max_fds", "gauge", "const", const(20_000))
    one("process_open_fds", "gauge", "const", rare(10, 11))
    one("process_resident_memory_bytes", "gauge", "int", walk(r.randint(3_500, 5_000) * PAGE, 8, PAGE))
    one("process_start_time_seconds", "gauge", "fconst", const((boot * 100 + r.randint(1_000, 9_999)) / 100))
    one("process_virtual_memory_bytes", "gauge", "int", walk(255_600 * PAGE, 64, PAGE, idle=0.8))
    one("process_virtual_memory_max_bytes", "gauge", "fconst", const(1.8446744073709552e+19))
    fam("promhttp_metric_handler_errors_total", "counter", [(f'cause="{c}",', "const", const(0)) for c in ("encoding", "gathering")])
    one("promhttp_metric_handler_requests_in_flight", "gauge", "const", const(1))
    fam("promhttp_metric_handler_requests_total", "counter",
        [('code="200",', "int", counter(r.randint(100, 10**5), 1)), ('code="500",', "const", const(0)),
         ('code="503",', "const", const(0))])
    return [(family, typ, [(name or family, lab, kind, gen) for name, lab, kind, gen in series])
            for family, typ, series in fams]


def scrape_times(r, start_ms, n, interval_ms):
    """one target's scrape timestamps: a random grid offset, 30 % of scrapes off by 1-3 ms"""
    offset = r.randint(3, interval_ms - 4)
    return [start_ms + offset + i * interval_ms + (r.choice((-3, -2, -1, 1, 2, 3)) if r.random() < 0.3 else 0)
            for i in range(n)]


def generate(path, prom_path, args, start_s):
    """writes the OpenMetrics file (and, for VictoriaMetrics, the same samples in the
    Prometheus text format, timestamps in ms); returns (series, samples, mix, first target's
    values by series for checking what VictoriaMetrics gives back)"""
    interval_ms = int(args.interval * 1000)
    n = int(args.hours * 3600 * 1000) // interval_ms
    hosts = [catalog(random.Random(f"{args.seed}/host/{h}")) for h in range(args.targets)]
    shape = [(f, t, [(s[0], s[2]) for s in ss]) for f, t, ss in hosts[0]]
    assert all([(f, t, [(s[0], s[2]) for s in ss]) for f, t, ss in c] == shape for c in hosts), "targets differ in shape"
    ts_ms = [scrape_times(random.Random(f"{args.seed}/ts/{h}"), start_s * 1000, n, interval_ms) for h in range(args.targets)]
    ts_om = [[f"{t // 1000}.{t % 1000:03d}" for t in ts] for ts in ts_ms]
    ts_prom = [[str(t) for t in ts] for ts in ts_ms]
    series = samples = 0
    host0 = {}
    mix = {}
    om = open(path, "w")
    prom = open(prom_path, "w") if prom_path else None
    try:
        for fi, (family, typ, _) in enumerate(hosts[0]):
            om.write(f"# TYPE {family} {typ}\n")
            for h in range(args.targets):
                for si, (name, labels, kind, gen) in enumerate(hosts[h][fi][2]):
                    vals = gen(random.Random(f"{args.seed}/{h}/{family}/{si}"), n, ts_ms[h])
                    prefix = f'{name}{{{labels}instance="host-{h}:9100",job="node"}} '
                    om.write("".join([f"{prefix}{v} {t}\n" for v, t in zip(vals, ts_om[h])]))
                    if prom:
                        prom.write("".join([f"{prefix}{v} {t}\n" for v, t in zip(vals, ts_prom[h])]))
                    series += 1
                    samples += n
                    mix[kind] = mix.get(kind, 0) + 1
                    if h == 0 and prom:
                        pairs = [(k, v) for k, v in parse_labels(labels) if v]  # empty labels are no labels
                        host0[(name, frozenset(pairs + [("instance", "host-0:9100"), ("job", "node")]))] = vals
        om.write("# EOF\n")
    finally:
        om.close()
        if prom:
            prom.close()
    return series, samples, mix, (ts_ms[0], host0)


def parse_labels(text):
    """the pairs of a `a="x",b="y",` label string (generated labels have no escapes)"""
    return re.findall(r'(\w+)="([^"]*)"', text)


# ---------------------------------------------------------------------------------------
# Stores

def blocks(data_dir):
    """(samples, chunk bytes, index bytes, other bytes, number of blocks) over the blocks in
    data_dir; `chunks` is a directory of segment files (Prometheus) or one file (vigie)"""
    samples = chunks = index = other = n = 0
    for entry in sorted(os.listdir(data_dir)):
        d = os.path.join(data_dir, entry)
        if not os.path.isfile(os.path.join(d, "meta.json")):
            continue
        n += 1
        with open(os.path.join(d, "meta.json")) as f:
            samples += json.load(f)["stats"]["numSamples"]
        for f in os.listdir(d):
            p = os.path.join(d, f)
            size = du(p) if os.path.isdir(p) else os.path.getsize(p)
            if f == "chunks":
                chunks += size
            elif f == "index":
                index += size
            else:
                other += size
    return samples, chunks, index, other, n


def run_import(name, cmd, log):
    t0 = time.monotonic()
    with open(log, "w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
    wall = time.monotonic() - t0
    if rc != 0:
        with open(log) as f:
            tail = f.read()[-2000:]
        sys.exit(f"{name}: `{' '.join(cmd)}` exited with {rc}:\n{tail}")
    return wall


def block_store(name, cmd, data_dir, work, expected, input_bytes):
    wall = run_import(name, cmd, os.path.join(work, f"{name}.log"))
    samples, chunks, index, other, n = blocks(data_dir)
    if samples != expected:
        sys.exit(f"{name}: meta.json says {samples} samples in {n} blocks, generated {expected}")
    return dict(samples=samples, blocks=n, chunk_bytes=chunks, index_bytes=index, other_bytes=other,
                total_bytes=chunks + index + other, import_seconds=round(wall, 3),
                input_mb_per_s=round(input_bytes / MB / wall, 1))


def vm_query(port, query, at):
    q = urllib.parse.urlencode({"query": query, "time": at, "nocache": 1})
    res = json.loads(get(port, f"/api/v1/query?{q}", timeout=60))["data"]["result"]
    return int(float(res[0]["value"][1])) if res else 0


def vm_active_merges(port):
    active = 0
    for line in get(port, "/metrics").splitlines():
        if line.startswith("vm_active_merges"):
            active += int(float(line.rsplit(" ", 1)[1]))
    return active


def vm_fidelity(port, host0, start_s, end_s):
    """compares what VictoriaMetrics returns for the first target with what was written:
    (samples checked, samples whose value changed, names of the series that changed)"""
    ts, want = host0
    q = urllib.parse.urlencode({"match[]": '{instance="host-0:9100"}', "start": start_s, "end": end_s})
    checked, changed, names = 0, 0, set()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/export?{q}", timeout=120) as r:
        for line in r:
            o = json.loads(line)
            m = o["metric"]
            name = m.pop("__name__")
            vals = want.get((name, frozenset(m.items())))
            if vals is None:
                sys.exit(f"victoria-metrics: exported a series that was not written: {name}{m}")
            at = dict(zip(ts, vals))
            for t, v in zip(o["timestamps"], o["values"]):
                checked += 1
                if float(at[t]) != float(v):
                    changed += 1
                    names.add(name)
    return checked, changed, sorted(names)


def vm_settle(port, data, settle, t0, fail):
    """waits until no merge is active and data/ and indexdb/ stay the same size for
    `settle` s; returns those sizes"""
    last, since = None, time.monotonic()
    while True:
        now = (du(os.path.join(data, "data")), du(os.path.join(data, "indexdb")))
        if now != last or vm_active_merges(port):
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= settle:
            return last
        if time.monotonic() - t0 > 300:
            fail("data directory still changing after 300 s")
        time.sleep(0.5)


def vm_parts(data):
    """partition -> number of data parts (directories under data/{small,big}/PARTITION/)"""
    parts = {}
    for kind in ("small", "big"):
        root = os.path.join(data, "data", kind)
        for partition in os.listdir(root) if os.path.isdir(root) else []:
            d = os.path.join(root, partition)
            if partition == "snapshots" or not os.path.isdir(d):
                continue
            n = sum(1 for p in os.listdir(d) if os.path.isfile(os.path.join(d, p, "values.bin")))
            parts[partition] = parts.get(partition, 0) + n
    return parts


def victoria(binary, prom_path, work, expected, series, start_s, end_s, settle, children, host0):
    """imports into a fresh VictoriaMetrics, counts the samples back, restarts it (its
    shutdown writes the in-memory parts to files, which force_flush does not), merges every
    partition down to one part and measures the directory after a clean stop"""
    data = os.path.join(work, "vm")
    log = os.path.join(work, "vm.log")
    logf = open(log, "w")

    def fail(msg):
        logf.flush()
        with open(log) as f:
            tail = f.read()[-2000:]
        sys.exit(f"victoria-metrics: {msg}\n--- {log} (tail) ---\n{tail}")

    def start():
        port = free_port()
        proc = subprocess.Popen([binary, f"-storageDataPath={data}", "-retentionPeriod=100y",
                                 f"-httpListenAddr=127.0.0.1:{port}", "-search.disableCache"],
                                stdout=logf, stderr=subprocess.STDOUT)
        children.append(proc)
        if not wait_http(port, "/health", proc=proc):
            fail("did not answer on /health")
        return proc, port

    def stop(proc):
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            fail("did not stop within 60 s of SIGINT")

    window = f"{end_s - start_s + 60}s"

    def count(port):
        """(samples, series) a query counts, once they are all searchable"""
        got = got_series = 0
        for _ in range(40):
            got = vm_query(port, f'sum(count_over_time({{job="node"}}[{window}]))', end_s)
            got_series = vm_query(port, f'count(count_over_time({{job="node"}}[{window}]))', end_s)
            if got == expected and got_series == series:
                return got
            time.sleep(0.25)
        fail(f"holds {got} samples in {got_series} series, generated {expected} in {series}")

    proc, port = start()
    t0 = time.monotonic()
    with open(prom_path, "rb") as f:  # in ~32 MB requests cut at line ends
        while chunk := f.read(32 << 20):
            chunk += f.readline()
            req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/import/prometheus", data=chunk, method="POST")
            with urllib.request.urlopen(req, timeout=300) as r:
                if r.status not in (200, 204):
                    fail(f"import answered {r.status}")
    get(port, "/internal/force_flush", timeout=120)
    wall = time.monotonic() - t0
    got = count(port)
    checked, changed, names = vm_fidelity(port, host0, start_s, end_s)
    if checked != len(host0[0]) * len(host0[1]):
        fail(f"exported {checked} samples of host-0, written {len(host0[0]) * len(host0[1])}")
    t_merge = time.monotonic()
    stop(proc)
    proc, port = start()
    for _ in range(5):
        if all(n <= 1 for n in vm_parts(data).values()):
            break
        get(port, "/internal/force_merge", timeout=600)
        vm_settle(port, data, settle, t_merge, fail)
    else:
        fail(f"still {vm_parts(data)} parts per partition after 5 force_merge calls")
    if count(port) != got:
        fail("lost samples in the restart and merge")
    stop(proc)
    merge_wall = time.monotonic() - t_merge
    chunks, index = du(os.path.join(data, "data")), du(os.path.join(data, "indexdb"))
    return dict(samples=got, blocks=None, chunk_bytes=chunks, index_bytes=index, other_bytes=0,
                total_bytes=chunks + index, import_seconds=round(wall, 3), merge_seconds=round(merge_wall, 3),
                input_mb_per_s=None, parts=vm_parts(data),
                values_checked=checked, values_changed=changed, series_changed=names)


def vm_binary(path):
    if not (path and os.access(path, os.X_OK)):
        return None, f"no victoria-metrics binary at {path}"
    try:
        with open("/tmp/vm-install.log") as f:
            lines = f.read().split()
        if lines and lines[-1] != "done":
            return None, "victoria-metrics is still being installed (/tmp/vm-install.log does not end with done)"
    except FileNotFoundError:
        pass
    return path, None


def main():
    global out
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--targets", type=int, default=20)
    ap.add_argument("--hours", type=float, default=2)
    ap.add_argument("--interval", type=float, default=15, help="scrape interval, seconds")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--vigie", default=os.path.join(TARGET_DIR, "release", "vigie"))
    ap.add_argument("--promtool", default=shutil.which("promtool") or "/usr/bin/promtool")
    ap.add_argument("--victoria-metrics", default=shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics")
    ap.add_argument("--settle", type=float, default=3, help="seconds VictoriaMetrics' files must stay unchanged")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout (the table goes to stderr)")
    ap.add_argument("--keep", action="store_true", help="keep the generated file and the data directories")
    args = ap.parse_args()
    if args.json:
        out = sys.stderr
    if not os.access(args.vigie, os.X_OK):
        sys.exit(f"no vigie binary at {args.vigie} (cargo build --release, or --vigie PATH)")
    promtool = args.promtool if os.access(args.promtool, os.X_OK) else None
    vm, vm_skip = vm_binary(args.victoria_metrics)

    # the newest whole 2 h boundary from which the data ends in the past
    start_s = (int(time.time()) - int(args.hours * 3600)) // BLOCK_S * BLOCK_S
    end_s = start_s + int(args.hours * 3600)
    work = tempfile.mkdtemp(prefix="vigie-disk-")
    children = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    try:
        om_path = os.path.join(work, "node.om.txt")
        prom_path = os.path.join(work, "node.prom.txt") if vm else None
        t0 = time.monotonic()
        series, samples, mix, host0 = generate(om_path, prom_path, args, start_s)
        size = os.path.getsize(om_path)
        per = series // args.targets
        say(f"generated {om_path}: {size / MB:.1f} MB, {series} series ({args.targets} targets x {per}), "
            f"{samples} samples, {args.hours:g} h from {time.strftime('%Y-%m-%d %H:%M', time.gmtime(start_s))} UTC "
            f"every {args.interval:g} s, seed {args.seed} ({time.monotonic() - t0:.1f} s)")
        say("series mix: " + ", ".join(f"{k} {100 * v / series:.1f} %" for k, v in
                                       sorted(mix.items(), key=lambda kv: -kv[1])))

        stores = {}
        say("importing into vigie ...")
        stores["vigie"] = block_store("vigie", [args.vigie, "import", "openmetrics", om_path, "--data-dir",
                                                os.path.join(work, "vigie")], os.path.join(work, "vigie"), work, samples, size)
        if promtool:
            say("importing with promtool ...")
            os.makedirs(os.path.join(work, "prom"))
            stores["prometheus"] = block_store("promtool", [promtool, "tsdb", "create-blocks-from", "openmetrics", "-q",
                                                            om_path, os.path.join(work, "prom")],
                                               os.path.join(work, "prom"), work, samples, size)
        else:
            say(f"skipping Prometheus: no promtool at {args.promtool}")
        if vm:
            say("importing into VictoriaMetrics ...")
            stores["victoriametrics"] = victoria(vm, prom_path, work, samples, series, start_s, end_s, args.settle, children, host0)
        else:
            say(f"skipping VictoriaMetrics: {vm_skip}")

        for s in stores.values():
            s["chunk_bytes_per_sample"] = round(s["chunk_bytes"] / s["samples"], 4)
            s["total_bytes_per_sample"] = round(s["total_bytes"] / s["samples"], 4)
        say("")
        say(f"{'store':<16}{'samples':>10}{'chunks/data B':>15}{'index B':>12}{'other B':>9}{'B/sample chunks':>17}"
            f"{'B/sample total':>16}{'import s':>10}{'MB/s in':>9}")
        label = {"vigie": "vigie", "prometheus": "prometheus 2.42", "victoriametrics": "victoriametrics"}
        for k, s in stores.items():
            mbs = f"{s['input_mb_per_s']:.1f}" if s["input_mb_per_s"] else "-"
            say(f"{label[k]:<16}{s['samples']:>10}{s['chunk_bytes']:>15}{s['index_bytes']:>12}{s['other_bytes']:>9}"
                f"{s['chunk_bytes_per_sample']:>17.3f}{s['total_bytes_per_sample']:>16.3f}{s['import_seconds']:>10.2f}{mbs:>9}")
        if "victoriametrics" in stores:
            say(f"(victoriametrics: chunks/data = data/, index = indexdb/; import = POST + force_flush, "
                f"then restart + force_merge to one part took {stores['victoriametrics']['merge_seconds']:.1f} s)")
            v = stores["victoriametrics"]
            if v["values_changed"]:
                names = v["series_changed"]
                say(f"(victoriametrics is lossy: {v['values_changed']} of {v['values_checked']} host-0 samples "
                    f"({100 * v['values_changed'] / v['values_checked']:.1f} %) came back changed, in {len(names)} "
                    f"metrics ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''}):\n its float-to-decimal "
                    f"conversion keeps ~12 significant digits and clips values above ~9.2e18)")
        ratios = {}
        for k in ("prometheus", "victoriametrics"):
            if k in stores:
                v, o = stores["vigie"], stores[k]
                ratios[k] = dict(chunks=round(v["chunk_bytes"] / o["chunk_bytes"], 4),
                                 total=round(v["total_bytes"] / o["total_bytes"], 4))
                say(f"ratio vigie/{label[k]}: chunks {ratios[k]['chunks']:.3f}, total {ratios[k]['total']:.3f}")
        if args.keep:
            say(f"kept {work}")
        if args.json:
            print(json.dumps(dict(input=dict(bytes=size, series=series, samples=samples, targets=args.targets,
                                             hours=args.hours, interval_s=args.interval, seed=args.seed,
                                             start_ms=start_s * 1000, mix=mix),
                                  stores=stores, ratios=ratios, skipped=None if vm else vm_skip)))
    finally:
        for p in children:
            if p.poll() is None:
                p.kill()
                p.wait()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
