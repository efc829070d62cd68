// meshnative: the few things Node cannot do itself.
//  - create/delete named network namespaces (as `ip netns` does: a bind mount under /run/netns)
//  - open sockets (netlink, UDP, TCP listeners) *inside* another network namespace: a short-lived
//    helper pthread setns()s itself, creates the socket and exits; the socket keeps its namespace.
//    The main thread never changes namespace, so libuv's pool and other sockets stay where they are.
//  - datagram I/O on such fds (netlink send/recv, UDP recvfrom/sendto) and a uv_poll readiness hook,
//    so UDP and netlink events are served from Node's own event loop: no thread per socket, no polling.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#define NETNS_RUN_DIR "/run/netns"

static napi_value throw_errno(napi_env env, int err, const char *op, const char *obj) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s %s: %s", op, obj ? obj : "", strerror(err));
  napi_value code, message, error, errnum;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  const char *name = "EUNKNOWN";
  switch (err) {
    case EEXIST: name = "EEXIST"; break;
    case ENOENT: name = "ENOENT"; break;
    case EPERM: name = "EPERM"; break;
    case EACCES: name = "EACCES"; break;
    case EINVAL: name = "EINVAL"; break;
    case EBUSY: name = "EBUSY"; break;
    case EADDRINUSE: name = "EADDRINUSE"; break;
    case EADDRNOTAVAIL: name = "EADDRNOTAVAIL"; break;
    case ENOBUFS: name = "ENOBUFS"; break;
    case EAGAIN: name = "EAGAIN"; break;
    case EMSGSIZE: name = "EMSGSIZE"; break;
    case ENODEV: name = "ENODEV"; break;
    case ENOTDIR: name = "ENOTDIR"; break;
    case EBADF: name = "EBADF"; break;
    case ECONNREFUSED: name = "ECONNREFUSED"; break;
    default: break;
  }
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, message, &error);
  napi_create_int32(env, err, &errnum);
  napi_set_named_property(env, error, "errno", errnum);
  napi_set_named_property(env, error, "code", code);
  napi_throw(env, error);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

static int get_string(napi_env env, napi_value v, char *buf, size_t len) {
  size_t got = 0;
  if (napi_get_value_string_utf8(env, v, buf, len, &got) != napi_ok) return -1;
  if (got >= len - 1) return -1;
  return 0;
}

static int get_int(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok ? 0 : -1;
}

static napi_value make_int(napi_env env, int64_t v) {
  napi_value r;
  napi_create_int64(env, v, &r);
  return r;
}

static napi_value undefined(napi_env env) {
  napi_value r;
  napi_get_undefined(env, &r);
  return r;
}

// ---- helper thread: everything that needs to run in another namespace happens here -------------

enum ns_op { OP_SOCKET, OP_NEW_NETNS, OP_WRITE_FILE, OP_READ_FILES };

#define READ_FILES_MAX 32
#define READ_FILE_BYTES 512

struct ns_job {
  enum ns_op op;
  const char *ns_path;  // namespace to enter (NULL: stay in ours)
  // OP_SOCKET
  int domain, type, protocol;
  struct sockaddr_storage addr;
  socklen_t addrlen;
  int backlog;  // >0: listen()
  int rcvbuf, sndbuf;
  // OP_NEW_NETNS
  const char *mount_target;
  // OP_WRITE_FILE
  const char *file_path;
  const char *file_data;
  // OP_READ_FILES: small files (sysctls); a missing one reads as found[i] = 0
  int nfiles;
  const char *files[READ_FILES_MAX];
  char contents[READ_FILES_MAX][READ_FILE_BYTES];
  int found[READ_FILES_MAX];
  // results
  int fd;
  int err;
  const char *failed_op;
};

static void *ns_thread(void *arg) {
  struct ns_job *j = arg;
  j->fd = -1;
  if (j->op == OP_NEW_NETNS) {
    if (unshare(CLONE_NEWNET) != 0) { j->err = errno; j->failed_op = "unshare"; return NULL; }
    char self[64];
    snprintf(self, sizeof self, "/proc/self/task/%ld/ns/net", (long)syscall(SYS_gettid));
    if (mount(self, j->mount_target, "none", MS_BIND, NULL) != 0) { j->err = errno; j->failed_op = "bind-mount"; }
    return NULL;
  }
  if (j->ns_path) {
    int nsfd = open(j->ns_path, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) { j->err = errno; j->failed_op = "open namespace"; return NULL; }
    int r = setns(nsfd, CLONE_NEWNET);
    int e = errno;
    close(nsfd);
    if (r != 0) { j->err = e; j->failed_op = "setns"; return NULL; }
  }
  if (j->op == OP_WRITE_FILE) {
    int fd = open(j->file_path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) { j->err = errno; j->failed_op = "open"; return NULL; }
    size_t n = strlen(j->file_data);
    if (write(fd, j->file_data, n) != (ssize_t)n) { j->err = errno; j->failed_op = "write"; }
    close(fd);
    return NULL;
  }
  if (j->op == OP_READ_FILES) {
    for (int i = 0; i < j->nfiles; i++) {
      int fd = open(j->files[i], O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        if (errno == ENOENT) continue;
        j->err = errno; j->failed_op = "open"; j->file_path = j->files[i]; return NULL;
      }
      ssize_t n;
      do n = read(fd, j->contents[i], READ_FILE_BYTES - 1);
      while (n < 0 && errno == EINTR);
      int e = errno;
      close(fd);
      if (n < 0) { j->err = e; j->failed_op = "read"; j->file_path = j->files[i]; return NULL; }
      j->contents[i][n] = 0;
      j->found[i] = 1;
    }
    return NULL;
  }
  int fd = socket(j->domain, j->type | SOCK_CLOEXEC | SOCK_NONBLOCK, j->protocol);
  if (fd < 0) { j->err = errno; j->failed_op = "socket"; return NULL; }
  if (j->rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &j->rcvbuf, sizeof j->rcvbuf) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &j->rcvbuf, sizeof j->rcvbuf);
  if (j->sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &j->sndbuf, sizeof j->sndbuf) != 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &j->sndbuf, sizeof j->sndbuf);
  if (j->domain == AF_NETLINK) {
    int one = 1;
    setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
    setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) { j->err = errno; j->failed_op = "bind"; close(fd); return NULL; }
  } else {
    // TCP only: rebinding past TIME_WAIT. On UDP it would let a second listener silently share
    // (and split) the port, so a second daemon must fail with EADDRINUSE instead.
    int one = 1;
    if (j->type == SOCK_STREAM) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&j->addr, j->addrlen) != 0) { j->err = errno; j->failed_op = "bind"; close(fd); return NULL; }
    if (j->backlog > 0 && listen(fd, j->backlog) != 0) { j->err = errno; j->failed_op = "listen"; close(fd); return NULL; }
  }
  j->fd = fd;
  return NULL;
}

static int run_ns_job(struct ns_job *j) {
  pthread_t t;
  int r = pthread_create(&t, NULL, ns_thread, j);
  if (r != 0) { j->err = r; j->failed_op = "pthread_create"; return -1; }
  pthread_join(t, NULL);
  return j->err ? -1 : 0;
}

static int parse_ip(const char *s, int port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, s, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *len = sizeof *a4;
    return AF_INET;
  }
  if (inet_pton(AF_INET6, s, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    *len = sizeof *a6;
    return AF_INET6;
  }
  return -1;
}

// ---- namespaces ------------------------------------------------------------------------------

// iproute2 makes /run/netns a shared mount so that a namespace mounted there is seen by every
// mount namespace; do the same so `ip netns` and our own code agree.
static int ensure_netns_dir(void) {
  if (mkdir(NETNS_RUN_DIR, 0755) != 0 && errno != EEXIST) return -1;
  if (mount("", NETNS_RUN_DIR, "none", MS_SHARED | MS_REC, NULL) == 0) return 0;
  if (errno != EINVAL) return -1;
  if (mount(NETNS_RUN_DIR, NETNS_RUN_DIR, "none", MS_BIND | MS_REC, NULL) != 0) return -1;
  return mount("", NETNS_RUN_DIR, "none", MS_SHARED | MS_REC, NULL);
}

static int valid_ns_name(const char *n) {
  if (!n[0] || strlen(n) > 200 || strcmp(n, ".") == 0 || strcmp(n, "..") == 0) return 0;
  for (const char *p = n; *p; p++)
    if (*p == '/') return 0;
  return 1;
}

// netnsCreate(name): like `ip netns add NAME`.
static napi_value netns_create(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char name[256];
  if (argc < 1 || get_string(env, argv[0], name, sizeof name) != 0 || !valid_ns_name(name))
    return throw_type(env, "netnsCreate(name): name must be a non-empty string without '/'");
  if (ensure_netns_dir() != 0) return throw_errno(env, errno, "prepare", NETNS_RUN_DIR);
  char path[512];
  snprintf(path, sizeof path, NETNS_RUN_DIR "/%s", name);
  int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "create netns", name);
  close(fd);
  struct ns_job j = {.op = OP_NEW_NETNS, .mount_target = path};
  if (run_ns_job(&j) != 0) {
    int e = j.err;
    umount2(path, MNT_DETACH);
    unlink(path);
    return throw_errno(env, e, j.failed_op, name);
  }
  return undefined(env);
}

// netnsDelete(name): like `ip netns del NAME`; a missing namespace is an ENOENT error.
static napi_value netns_delete(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char name[256];
  if (argc < 1 || get_string(env, argv[0], name, sizeof name) != 0 || !valid_ns_name(name))
    return throw_type(env, "netnsDelete(name): name must be a non-empty string without '/'");
  char path[512];
  snprintf(path, sizeof path, NETNS_RUN_DIR "/%s", name);
  struct stat st;
  if (stat(path, &st) != 0) return throw_errno(env, errno, "delete netns", name);
  umount2(path, MNT_DETACH);  // may already be unmounted after a crash halfway through
  if (unlink(path) != 0) return throw_errno(env, errno, "delete netns", name);
  return undefined(env);
}

// ---- sockets inside a namespace -----------------------------------------------------------------

static int opt_ns_path(napi_env env, napi_value v, char *buf, size_t len, const char **out) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_null || t == napi_undefined) { *out = NULL; return 0; }
  if (get_string(env, v, buf, len) != 0) return -1;
  *out = buf;
  return 0;
}

// netlinkOpen(protocol, nsPath|null, rcvbuf, sndbuf) -> fd (non-blocking, bound, ext-ack on)
static napi_value netlink_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char nsbuf[512];
  struct ns_job j = {.op = OP_SOCKET, .domain = AF_NETLINK, .type = SOCK_RAW};
  if (argc < 4 || get_int(env, argv[0], &j.protocol) != 0 || opt_ns_path(env, argv[1], nsbuf, sizeof nsbuf, &j.ns_path) != 0 ||
      get_int(env, argv[2], &j.rcvbuf) != 0 || get_int(env, argv[3], &j.sndbuf) != 0)
    return throw_type(env, "netlinkOpen(protocol, nsPath|null, rcvbuf, sndbuf)");
  if (run_ns_job(&j) != 0) return throw_errno(env, j.err, j.failed_op, j.ns_path ? j.ns_path : "netlink socket");
  return make_int(env, j.fd);
}

// socketOpen(nsPath|null, "udp"|"tcp"|"icmp", address, port, backlog) -> fd, bound (and listening for tcp)
static napi_value socket_open(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char nsbuf[512], kind[8], addr[64];
  int32_t port = 0, backlog = 0;
  struct ns_job j = {.op = OP_SOCKET};
  if (argc < 5 || opt_ns_path(env, argv[0], nsbuf, sizeof nsbuf, &j.ns_path) != 0 || get_string(env, argv[1], kind, sizeof kind) != 0 ||
      get_string(env, argv[2], addr, sizeof addr) != 0 || get_int(env, argv[3], &port) != 0 || get_int(env, argv[4], &backlog) != 0)
    return throw_type(env, "socketOpen(nsPath|null, 'udp'|'tcp', address, port, backlog)");
  if (port < 0 || port > 65535) return throw_type(env, "socketOpen: port must be 0..65535");
  int fam = parse_ip(addr, port, &j.addr, &j.addrlen);
  if (fam < 0) return throw_type(env, "socketOpen: address is not an IPv4 or IPv6 literal");
  j.domain = fam;
  if (strcmp(kind, "udp") == 0) {
    j.type = SOCK_DGRAM;
  } else if (strcmp(kind, "tcp") == 0) {
    j.type = SOCK_STREAM;
    j.backlog = backlog > 0 ? backlog : 511;
  } else if (strcmp(kind, "icmp") == 0) {
    // ICMP echo probes (overlay health) from inside a namespace: raw, bound to the source address.
    if (fam != AF_INET) return throw_type(env, "socketOpen: icmp sockets are IPv4");
    j.type = SOCK_RAW;
    j.protocol = IPPROTO_ICMP;
  } else {
    return throw_type(env, "socketOpen: kind must be 'udp', 'tcp' or 'icmp'");
  }
  if (run_ns_job(&j) != 0) {
    char obj[640];
    snprintf(obj, sizeof obj, "%s %s:%d in %s", kind, addr, port, j.ns_path ? j.ns_path : "this namespace");
    return throw_errno(env, j.err, j.failed_op, obj);
  }
  return make_int(env, j.fd);
}

// writeFileInNetns(nsPath, file, data): e.g. /proc/sys/net/... which resolves per namespace.
static napi_value write_file_in_netns(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char nsbuf[512], file[512], data[4096];
  struct ns_job j = {.op = OP_WRITE_FILE};
  if (argc < 3 || opt_ns_path(env, argv[0], nsbuf, sizeof nsbuf, &j.ns_path) != 0 || get_string(env, argv[1], file, sizeof file) != 0 ||
      get_string(env, argv[2], data, sizeof data) != 0)
    return throw_type(env, "writeFileInNetns(nsPath|null, file, data)");
  j.file_path = file;
  j.file_data = data;
  if (run_ns_job(&j) != 0) return throw_errno(env, j.err, j.failed_op, file);
  return undefined(env);
}

// readFilesInNetns(nsPath, files) -> (string | null)[]: small files read inside a namespace (null:
// no such file), e.g. sysctls under /proc/sys/net, without a process per read.
static napi_value read_files_in_netns(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char nsbuf[512];
  static __thread char names[READ_FILES_MAX][512];
  static __thread struct ns_job j;
  memset(&j, 0, sizeof j);
  j.op = OP_READ_FILES;
  uint32_t n = 0;
  bool is_array = false;
  if (argc < 2 || opt_ns_path(env, argv[0], nsbuf, sizeof nsbuf, &j.ns_path) != 0 || napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[1], &n) != napi_ok || n > READ_FILES_MAX)
    return throw_type(env, "readFilesInNetns(nsPath|null, files[] (at most 32))");
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    if (napi_get_element(env, argv[1], i, &v) != napi_ok || get_string(env, v, names[i], sizeof names[i]) != 0)
      return throw_type(env, "readFilesInNetns(nsPath|null, files[] (at most 32))");
    j.files[i] = names[i];
  }
  j.nfiles = (int)n;
  if (run_ns_job(&j) != 0) return throw_errno(env, j.err, j.failed_op, j.file_path ? j.file_path : j.ns_path ? j.ns_path : "files");
  napi_value out;
  napi_create_array_with_length(env, n, &out);
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    if (j.found[i]) napi_create_string_utf8(env, j.contents[i], NAPI_AUTO_LENGTH, &v);
    else napi_get_null(env, &v);
    napi_set_element(env, out, i, v);
  }
  return out;
}

// ---- datagram I/O ---------------------------------------------------------------------------

// Thread-local so a worker thread using the addon never shares the main thread's buffer.
static __thread uint8_t recv_buf[1 << 18];

// netlinkSend(fd, buffer) -> bytes sent. The kernel handles rtnetlink/genetlink requests inside
// sendmsg, so replies are queued by the time this returns.
static napi_value netlink_send(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  void *data;
  size_t len;
  if (argc < 2 || get_int(env, argv[0], &fd) != 0 || napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok)
    return throw_type(env, "netlinkSend(fd, buffer)");
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  ssize_t n;
  do n = sendto(fd, data, len, 0, (struct sockaddr *)&sa, sizeof sa);
  while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, errno, "sendto", "netlink");
  return make_int(env, n);
}

// netlinkRecv(fd, timeoutMs) -> Buffer | null (timeout). One datagram (possibly many messages).
static napi_value netlink_recv(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd, timeout;
  if (argc < 2 || get_int(env, argv[0], &fd) != 0 || get_int(env, argv[1], &timeout) != 0)
    return throw_type(env, "netlinkRecv(fd, timeoutMs)");
  for (;;) {
    ssize_t n = recv(fd, recv_buf, sizeof recv_buf, MSG_DONTWAIT | MSG_TRUNC);
    if (n >= 0) {
      if ((size_t)n > sizeof recv_buf) return throw_errno(env, EMSGSIZE, "recv", "netlink (message truncated)");
      napi_value buf;
      void *out;
      napi_create_buffer_copy(env, (size_t)n, recv_buf, &out, &buf);
      return buf;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return throw_errno(env, errno, "recv", "netlink");
    if (timeout == 0) break;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, timeout);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return throw_errno(env, errno, "poll", "netlink");
    if (r == 0) break;
  }
  napi_value nul;
  napi_get_null(env, &nul);
  return nul;
}

// netlinkPortId(fd) -> the port id the kernel assigned at bind
static napi_value netlink_port_id(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  if (argc < 1 || get_int(env, argv[0], &fd) != 0) return throw_type(env, "netlinkPortId(fd)");
  struct sockaddr_nl sa;
  socklen_t l = sizeof sa;
  if (getsockname(fd, (struct sockaddr *)&sa, &l) != 0) return throw_errno(env, errno, "getsockname", "netlink");
  return make_int(env, sa.nl_pid);
}

// netlinkSetOption(fd, level, name, value) for NETLINK_ADD_MEMBERSHIP etc.
static napi_value set_sockopt_int(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd, level, name, value;
  if (argc < 4 || get_int(env, argv[0], &fd) != 0 || get_int(env, argv[1], &level) != 0 || get_int(env, argv[2], &name) != 0 ||
      get_int(env, argv[3], &value) != 0)
    return throw_type(env, "setSockOptInt(fd, level, name, value)");
  if (setsockopt(fd, level, name, &value, sizeof value) != 0) return throw_errno(env, errno, "setsockopt", NULL);
  return undefined(env);
}

// udpRecv(fd) -> { data, address, port } | null when nothing is queued.
static napi_value udp_recv(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  if (argc < 1 || get_int(env, argv[0], &fd) != 0) return throw_type(env, "udpRecv(fd)");
  struct sockaddr_storage ss;
  for (;;) {
    socklen_t sl = sizeof ss;
    ssize_t n = recvfrom(fd, recv_buf, 65536, MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&ss, &sl);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        napi_value nul;
        napi_get_null(env, &nul);
        return nul;
      }
      return throw_errno(env, errno, "recvfrom", "udp");
    }
    size_t len = (size_t)n > 65536 ? 65536 : (size_t)n;
    char host[INET6_ADDRSTRLEN] = "";
    int port = 0;
    if (ss.ss_family == AF_INET) {
      struct sockaddr_in *a = (struct sockaddr_in *)&ss;
      inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
      port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
      inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
      port = ntohs(a->sin6_port);
    }
    napi_value obj, buf, h, truncated;
    void *out;
    napi_create_object(env, &obj);
    napi_create_buffer_copy(env, len, recv_buf, &out, &buf);
    napi_create_string_utf8(env, host, NAPI_AUTO_LENGTH, &h);
    napi_get_boolean(env, (size_t)n > 65536, &truncated);
    napi_set_named_property(env, obj, "data", buf);
    napi_set_named_property(env, obj, "address", h);
    napi_set_named_property(env, obj, "port", make_int(env, port));
    napi_set_named_property(env, obj, "truncated", truncated);
    return obj;
  }
}

// udpSend(fd, buffer, address, port) -> true if sent, false if the socket buffer is full (dropped,
// as UDP may); other errors throw.
static napi_value udp_send(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd, port;
  void *data;
  size_t len;
  char addr[64];
  if (argc < 4 || get_int(env, argv[0], &fd) != 0 || napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok ||
      get_string(env, argv[2], addr, sizeof addr) != 0 || get_int(env, argv[3], &port) != 0)
    return throw_type(env, "udpSend(fd, buffer, address, port)");
  struct sockaddr_storage ss;
  socklen_t sl;
  if (parse_ip(addr, port, &ss, &sl) < 0) return throw_type(env, "udpSend: address is not an IP literal");
  ssize_t n;
  do n = sendto(fd, data, len, MSG_DONTWAIT, (struct sockaddr *)&ss, sl);
  while (n < 0 && errno == EINTR);
  napi_value r;
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
      napi_get_boolean(env, 0, &r);
      return r;
    }
    return throw_errno(env, errno, "sendto", addr);
  }
  napi_get_boolean(env, 1, &r);
  return r;
}

// ---- readiness on Node's loop ---------------------------------------------------------------

struct watcher {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  int closing;
};

static void watcher_closed(uv_handle_t *h) {
  struct watcher *w = h->data;
  napi_delete_reference(w->env, w->callback);
  free(w);
}

static void watcher_ready(uv_poll_t *p, int status, int events) {
  struct watcher *w = p->data;
  if (w->closing) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, global, arg, result;
  napi_get_reference_value(env, w->callback, &cb);
  napi_get_global(env, &global);
  napi_create_int32(env, status < 0 ? status : events, &arg);
  if (napi_make_callback(env, NULL, global, cb, 1, &arg, &result) != napi_ok) {
    // An exception escaped the JS callback: surface it like any uncaught exception.
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc);
    }
  }
  napi_close_handle_scope(env, scope);
}

// The JS handle owns a box; unwatch empties it, so a second unwatch (or GC later) is harmless.
struct watch_box {
  struct watcher *w;
};

static void watcher_stop(struct watch_box *b) {
  struct watcher *w = b->w;
  if (!w) return;
  b->w = NULL;
  w->closing = 1;
  uv_poll_stop(&w->poll);
  uv_close((uv_handle_t *)&w->poll, watcher_closed);
}

static void box_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  watcher_stop(data);
  free(data);
}

// watchReadable(fd, callback) -> handle. callback(events) runs on the main loop whenever fd is
// readable; the callback must drain the socket (recv until null).
static napi_value watch_readable(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  napi_valuetype t;
  if (argc < 2 || get_int(env, argv[0], &fd) != 0 || napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function)
    return throw_type(env, "watchReadable(fd, callback)");
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  struct watcher *w = calloc(1, sizeof *w);
  struct watch_box *b = calloc(1, sizeof *b);
  if (!w || !b) {
    free(w);
    free(b);
    return throw_errno(env, ENOMEM, "watchReadable", NULL);
  }
  w->env = env;
  int r = uv_poll_init(loop, &w->poll, fd);
  if (r != 0) {
    free(w);
    free(b);
    return throw_errno(env, -r, "uv_poll_init", NULL);
  }
  w->poll.data = w;
  b->w = w;
  napi_create_reference(env, argv[1], 1, &w->callback);
  uv_poll_start(&w->poll, UV_READABLE, watcher_ready);
  napi_value handle;
  napi_create_external(env, b, box_finalize, NULL, &handle);
  return handle;
}

static struct watch_box *get_box(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
  return p;
}

// unwatch(handle): stop and free. Idempotent.
static napi_value unwatch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct watch_box *b = argc ? get_box(env, argv[0]) : NULL;
  if (!b) return throw_type(env, "unwatch(handle)");
  watcher_stop(b);
  return undefined(env);
}

// watchRef(handle, bool): whether the watcher keeps the process alive.
static napi_value watch_ref(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct watch_box *b = argc ? get_box(env, argv[0]) : NULL;
  bool ref = true;
  if (!b || argc < 2 || napi_get_value_bool(env, argv[1], &ref) != napi_ok) return throw_type(env, "watchRef(handle, bool)");
  if (!b->w) return undefined(env);
  if (ref) uv_ref((uv_handle_t *)&b->w->poll);
  else uv_unref((uv_handle_t *)&b->w->poll);
  return undefined(env);
}

static napi_value closefd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  if (argc < 1 || get_int(env, argv[0], &fd) != 0) return throw_type(env, "close(fd)");
  if (close(fd) != 0 && errno != EINTR) return throw_errno(env, errno, "close", NULL);
  return undefined(env);
}

#define EXPORT(name, fn)                                        \
  do {                                                          \
    napi_value f;                                               \
    napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f); \
    napi_set_named_property(env, exports, name, f);             \
  } while (0)

static napi_value init(napi_env env, napi_value exports) {
  EXPORT("netnsCreate", netns_create);
  EXPORT("netnsDelete", netns_delete);
  EXPORT("netlinkOpen", netlink_open);
  EXPORT("netlinkSend", netlink_send);
  EXPORT("netlinkRecv", netlink_recv);
  EXPORT("netlinkPortId", netlink_port_id);
  EXPORT("setSockOptInt", set_sockopt_int);
  EXPORT("socketOpen", socket_open);
  EXPORT("writeFileInNetns", write_file_in_netns);
  EXPORT("readFilesInNetns", read_files_in_netns);
  EXPORT("udpRecv", udp_recv);
  EXPORT("udpSend", udp_send);
  EXPORT("watchReadable", watch_readable);
  EXPORT("unwatch", unwatch);
  EXPORT("watchRef", watch_ref);
  EXPORT("close", closefd);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
