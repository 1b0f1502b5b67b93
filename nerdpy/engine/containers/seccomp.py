"""docker's default seccomp profile, generated into the OCI spec.

The allow-list follows moby's `profiles/seccomp/default.json`: everything not listed fails with
EPERM; `clone3` fails with ENOSYS so that libcs fall back to `clone`, whose namespace flags are
filtered; syscalls tied to capabilities are allowed only when the container has them.
"""
from __future__ import annotations

_ALLOWED = """
accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64
clock_nanosleep clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3
epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old
eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate
fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync
fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync
ftruncate ftruncate64 futex futex_requeue futex_time64 futex_wait futex_waitv futex_wake futimesat
getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups
getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid
getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt
get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init
inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents
io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit ipc kill landlock_add_rule
landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat listen listxattr
llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise map_shadow_stack membarrier
memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect
mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend
mq_timedsend_time64 mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall munmap
name_to_handle_at nanosleep newfstatat _newselect open openat openat2 pause pidfd_open pidfd_send_signal
pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv preadv2
prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink
readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr rename
renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo
rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity
sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send
sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32
setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid
setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area
set_tid_address setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd
signalfd4 sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs statfs64 statx symlink
symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create timer_delete timer_getoverrun
timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create timerfd_gettime
timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask
uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write
writev arch_prctl modify_ldt
process_vm_readv process_vm_writev ptrace
""".split()  # the last line: allowed for everyone on kernels >= 4.8, as moby's profile does

# syscalls allowed only with a capability (moby's "includes": {"caps": [...]})
_BY_CAP = {
    "CAP_SYS_ADMIN": """bpf clone fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount
        mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname
        setns syslog umount umount2 unshare""".split(),
    "CAP_SYS_BOOT": ["reboot"],
    "CAP_SYS_CHROOT": ["chroot"],
    "CAP_SYS_MODULE": ["delete_module", "init_module", "finit_module"],
    "CAP_SYS_PACCT": ["acct"],
    "CAP_SYS_PTRACE": ["kcmp", "pidfd_getfd", "process_madvise"],
    "CAP_SYS_RAWIO": ["iopl", "ioperm"],
    "CAP_SYS_TIME": ["settimeofday", "stime", "clock_settime", "clock_settime64"],
    "CAP_SYS_TTY_CONFIG": ["vhangup"],
    "CAP_SYS_NICE": ["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"],
    "CAP_SYSLOG": ["syslog"],
    "CAP_BPF": ["bpf"],
    "CAP_PERFMON": ["perf_event_open"],
    "CAP_DAC_READ_SEARCH": ["open_by_handle_at"],
}

_CLONE_NS_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET


def default_profile(caps: list[str], arch: str | None = None) -> dict:
    """docker's default profile for a container with capabilities `caps`."""
    syscalls: list[dict] = [{"names": list(_ALLOWED), "action": "SCMP_ACT_ALLOW"}]
    # personality: only the harmless personas
    for persona in (0x0, 0x0008, 0x20000, 0x20008, 0xFFFFFFFF):
        syscalls.append({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                         "args": [{"index": 0, "value": persona, "op": "SCMP_CMP_EQ"}]})
    extra: list[str] = []
    for cap, names in _BY_CAP.items():
        if cap in caps:
            extra += [n for n in names if n not in extra]
    if extra:
        syscalls.append({"names": extra, "action": "SCMP_ACT_ALLOW"})
    if "CAP_SYS_ADMIN" not in caps:
        # clone without namespace flags (the flags are argument 0 on x86_64)
        syscalls.append({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                         "args": [{"index": 0, "value": _CLONE_NS_FLAGS, "valueTwo": 0,
                                   "op": "SCMP_CMP_MASKED_EQ"}]})
        # clone3 cannot be filtered by flags: make libc fall back to clone
        syscalls.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38})
    else:
        syscalls.append({"names": ["clone3"], "action": "SCMP_ACT_ALLOW"})
    # socket: everything but AF_VSOCK (40)
    syscalls.append({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]})
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
        if (arch or _machine()) == "x86_64"
        else ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "syscalls": syscalls,
    }


def _machine() -> str:
    import platform

    return platform.machine()


# Go's GOARCH names (used by moby profiles' "arches") and libseccomp's for the native arch
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le",
           "s390x": "s390x", "riscv64": "riscv64"}
_SCMP_ARCH = {"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64", "arm": "SCMP_ARCH_ARM",
              "386": "SCMP_ARCH_X86", "ppc64le": "SCMP_ARCH_PPC64LE", "s390x": "SCMP_ARCH_S390X",
              "riscv64": "SCMP_ARCH_RISCV64"}
_ARCH_ALIASES = {"amd64": {"amd64", "x86_64"}, "386": {"386", "x86"}, "arm64": {"arm64", "aarch64"}}


def _kernel_at_least(version: str) -> bool:
    import platform
    import re

    def nums(text: str) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", text)[:2])

    try:
        return nums(platform.release()) >= nums(version)
    except ValueError:
        return True


def from_docker_profile(profile: dict, caps: list[str], arch: str | None = None) -> dict:
    """A profile in docker's format (`--security-opt seccomp=PATH`: archMap, includes and
    excludes by capability, architecture and kernel) -> the runtime spec's linux.seccomp, for a
    container with capabilities `caps`, with moby's rules: an entry is kept only when all its
    included caps are present and none of its excluded ones."""
    if not isinstance(profile, dict):
        raise ValueError("the profile is not a JSON object")
    if "defaultAction" not in profile:
        raise ValueError("the profile has no defaultAction")
    goarch = _GOARCH.get(arch or _machine(), arch or _machine())
    native = _ARCH_ALIASES.get(goarch, {goarch})
    out: dict = {"defaultAction": profile["defaultAction"]}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    archs = list(profile.get("architectures") or [])
    for entry in profile.get("archMap") or []:
        if entry.get("architecture") == _SCMP_ARCH.get(goarch):
            archs = [entry["architecture"]] + list(entry.get("subArchitectures") or [])
            break
    if archs:
        out["architectures"] = archs
    for key in ("flags", "listenerPath", "listenerMetadata"):
        if profile.get(key):
            out[key] = profile[key]
    syscalls = []
    for call in profile.get("syscalls") or []:
        if not isinstance(call, dict):
            raise ValueError("a syscalls entry is not an object")
        inc = call.get("includes") or {}
        exc = call.get("excludes") or {}
        if any(c in caps for c in exc.get("caps") or []):
            continue
        if any(c not in caps for c in inc.get("caps") or []):
            continue
        if exc.get("arches") and native & set(exc["arches"]):
            continue
        if inc.get("arches") and not native & set(inc["arches"]):
            continue
        if inc.get("minKernel") and not _kernel_at_least(str(inc["minKernel"])):
            continue
        if exc.get("minKernel") and _kernel_at_least(str(exc["minKernel"])):
            continue
        names = list(call.get("names") or [])
        if call.get("name"):
            names.append(call["name"])
        if not names or "action" not in call:
            raise ValueError("a syscalls entry needs names and an action")
        rule: dict = {"names": names, "action": call["action"]}
        if call.get("args"):
            rule["args"] = call["args"]
        if call.get("errnoRet") is not None:
            rule["errnoRet"] = call["errnoRet"]
        syscalls.append(rule)
    out["syscalls"] = syscalls
    return out
