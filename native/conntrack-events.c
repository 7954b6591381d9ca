/*
 * conntrack-events: the conntrack event stream of `conntrack -E -o id`, with a receive buffer that works.
 *
 * Part of effect-conntrack (MIT). Built on libnetfilter_conntrack, the library conntrack itself uses: it opens the
 * NEW, UPDATE and DESTROY groups, sets the receive buffer on the socket that receives them (conntrack 1.4.7 sets
 * --buffer-size on another socket), and prints each event as `conntrack -E -o id` does (same library call, same
 * `[NEW]`/`[UPDATE]`/`[DESTROY]` padding, same ` [USERSPACE] portid=N progname=NAME` tail), so the same parser reads
 * both. stderr carries conntrack's markers: the buffer-size NOTICE once the socket is bound (always, as the "now
 * listening" signal), the three ENOBUFS lines when the kernel dropped events (and it keeps running, as conntrack
 * 1.4.7 does), and a trailer on SIGTERM/SIGINT before exiting 0. Lines are written per batch of socket reads, not per
 * line; a pipe is written without blocking, the lines waiting in a queue of our own (see `queue`).
 *
 * Reliable delivery (NETLINK_BROADCAST_ERROR + NETLINK_NO_ENOBUFS) is left out on purpose: measured, it keeps closed
 * entries in the kernel's table while the reader stalls and drops NEW/UPDATE events without any ENOBUFS (README).
 *
 * It dies with its parent: it sets PR_SET_PDEATHSIG itself (the kernel clears one set before exec when the binary
 * has file capabilities), then exits if the parent is already gone.
 *
 * Usage: conntrack-events [-p PROTO] [--buffer-size BYTES] [--queue-size BYTES] [--parent-pid PID]
 *        conntrack-events --version
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#define PROGNAME "conntrack-events"
#define VERSION "1.0.0"

static volatile sig_atomic_t stop_signal = 0;
static unsigned long counter = 0;

static void on_signal(int s) { stop_signal = s; }

static void usage_error(const char *what) {
  fprintf(stderr, "%s: %s\n", PROGNAME, what);
  fprintf(stderr, "usage: %s [-p PROTO] [--buffer-size BYTES] [--queue-size BYTES] [--parent-pid PID] | --version\n",
          PROGNAME);
  exit(2);
}

static int protocol_number(const char *name) {
  static const struct {
    const char *name;
    int number;
  } known[] = {{"tcp", 6},    {"udp", 17},   {"icmp", 1},         {"icmpv6", 58}, {"ipv6-icmp", 58},
               {"sctp", 132}, {"dccp", 33},  {"gre", 47},         {"udplite", 136}};
  for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
    if (strcmp(name, known[i].name) == 0) return known[i].number;
  char *end;
  long n = strtol(name, &end, 10);
  if (*name != '\0' && *end == '\0' && n >= 0 && n <= 255) return (int)n;
  return -1;
}

/* The name of the process that owns a netlink socket, as conntrack 1.4.7 finds it for [USERSPACE] events. */
static char *name_of_pid(unsigned long pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%lu/stat", pid);
  FILE *fp = fopen(path, "r");
  if (!fp) return NULL;
  char *name = NULL;
  if (fscanf(fp, "%*u (%m[^)]", &name) != 1) name = NULL;
  fclose(fp);
  return name;
}

static int pid_has_socket(unsigned long pid, unsigned long inode) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%lu/fd", pid);
  DIR *dir = opendir(path);
  if (!dir) return 0;
  int found = 0;
  struct dirent *ent;
  while (!found && (ent = readdir(dir)) != NULL) {
    if (ent->d_type != DT_LNK) continue;
    char link[320], target[128];
    snprintf(link, sizeof(link), "%s/%s", path, ent->d_name);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    unsigned long ino;
    if (sscanf(target, "socket:[%lu]", &ino) == 1 && ino == inode) found = 1;
  }
  closedir(dir);
  return found;
}

static char *name_of_portid(uint32_t portid) {
  static uint32_t last_portid;
  static unsigned long last_inode;
  static char *last_name;
  FILE *fp = fopen("/proc/net/netlink", "r");
  if (!fp) return NULL;
  char line[256];
  unsigned long inode = 0;
  int found = 0;
  while (fgets(line, sizeof(line), fp)) {
    int protocol;
    uint32_t port;
    unsigned long ino;
    if (sscanf(line, "%*x %d %u %*x %*d %*d %*x %*d %*u %lu", &protocol, &port, &ino) == 3 && port == portid &&
        protocol == NETLINK_NETFILTER) {
      inode = ino;
      found = 1;
      break;
    }
  }
  fclose(fp);
  if (!found) return NULL;
  if (last_name != NULL && last_portid == portid && last_inode == inode) return last_name;
  char *name = NULL;
  /* Most netlink users take their pid as the first port id; else search every process. */
  if (pid_has_socket(portid, inode)) name = name_of_pid(portid);
  if (name == NULL) {
    DIR *proc = opendir("/proc");
    if (proc) {
      struct dirent *ent;
      while (name == NULL && (ent = readdir(proc)) != NULL) {
        char *end;
        unsigned long pid = strtoul(ent->d_name, &end, 10);
        if (ent->d_type != DT_DIR || pid <= 1 || *end != '\0' || pid == portid) continue;
        if (pid_has_socket(pid, inode)) name = name_of_pid(pid);
      }
      closedir(proc);
    }
  }
  free(last_name);
  last_name = name;
  last_portid = portid;
  last_inode = inode;
  return name;
}

/*
 * Lines waiting for the reader. The socket is read as soon as events arrive and the lines wait here, not in the
 * kernel, when the reader is slow (say, a walker busy with a dump): a line takes about 200 bytes here and an event
 * about 1 KiB of the socket's receive buffer. Past --queue-size the socket is no longer read, so the kernel's buffer
 * fills and the kernel reports the loss (ENOBUFS) as before.
 */
static struct {
  char *data;
  size_t start, end, capacity, limit;
} queue = {NULL, 0, 0, 0, 64u << 20};

static size_t queued(void) { return queue.end - queue.start; }

/* Room for more: always when empty, so that --queue-size 0 means "no more than one batch, like a blocking writer". */
static int queue_open(void) { return queued() == 0 || queued() < queue.limit; }

static void queue_reserve(size_t n) {
  if (queue.end + n <= queue.capacity) return;
  if (queue.start > 0) {
    memmove(queue.data, queue.data + queue.start, queued());
    queue.end -= queue.start;
    queue.start = 0;
    if (queue.end + n <= queue.capacity) return;
  }
  size_t capacity = queue.capacity == 0 ? 1u << 16 : queue.capacity;
  while (capacity < queue.end + n) capacity *= 2;
  char *data = realloc(queue.data, capacity);
  if (!data) {
    fprintf(stderr, "%s: out of memory\n", PROGNAME);
    exit(1);
  }
  queue.data = data;
  queue.capacity = capacity;
}

static void queue_line(const char *line, const char *tail) {
  size_t a = strlen(line), b = strlen(tail);
  queue_reserve(a + b + 1);
  memcpy(queue.data + queue.end, line, a);
  memcpy(queue.data + queue.end + a, tail, b);
  queue.data[queue.end + a + b] = '\n';
  queue.end += a + b + 1;
}

/* Writes what stdout takes now: 0, or -1 when the reader is gone. */
static int queue_write(void) {
  while (queued() > 0) {
    ssize_t n = write(STDOUT_FILENO, queue.data + queue.start, queued());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return -1;
    }
    queue.start += (size_t)n;
  }
  queue.start = queue.end = 0;
  return 0;
}

/* One netlink message: print it as conntrack -E -o id does, if it passes the protocol filter. */
static void print_event(const struct nlmsghdr *nlh, int protocol, struct nf_conntrack *ct) {
  enum nf_conntrack_msg_type type;
  switch (nlh->nlmsg_type & 0xff) {
  case IPCTNL_MSG_CT_NEW:
    type = (nlh->nlmsg_flags & NLM_F_CREATE) ? NFCT_T_NEW : NFCT_T_UPDATE;
    break;
  case IPCTNL_MSG_CT_DELETE:
    type = NFCT_T_DESTROY;
    break;
  default:
    type = 0;
    break;
  }
  if (nfct_nlmsg_parse(nlh, ct) < 0) return;
  if (protocol >= 0 && nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO) != protocol) return;
  char buf[1024];
  nfct_snprintf(buf, sizeof(buf), ct, type, NFCT_O_DEFAULT, NFCT_OF_ID);
  if (nlh->nlmsg_pid) {
    char tail[320];
    char *name = name_of_portid(nlh->nlmsg_pid);
    if (name)
      snprintf(tail, sizeof(tail), " [USERSPACE] portid=%u progname=%s", nlh->nlmsg_pid, name);
    else
      snprintf(tail, sizeof(tail), " [USERSPACE] portid=%u", nlh->nlmsg_pid);
    queue_line(buf, tail);
  } else {
    queue_line(buf, "");
  }
  counter++;
}

static void print_batch(const char *buf, ssize_t len, int protocol) {
  for (const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf; NLMSG_OK(nlh, (unsigned int)len);
       nlh = NLMSG_NEXT(nlh, len)) {
    if (nlh->nlmsg_type == NLMSG_ERROR || nlh->nlmsg_type == NLMSG_DONE || nlh->nlmsg_type == NLMSG_NOOP) continue;
    if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_CTNETLINK) continue;
    struct nf_conntrack *ct = nfct_new();
    if (!ct) {
      fprintf(stderr, "%s: out of memory\n", PROGNAME);
      exit(1);
    }
    print_event(nlh, protocol, ct);
    nfct_destroy(ct);
  }
}

static void stop(void) {
  queue_write(); /* what the pipe takes now: the reader is stopping us */
  fprintf(stderr, "%s v%s (effect-conntrack): %lu flow events have been shown.\n", PROGNAME, VERSION, counter);
  exit(0);
}

static void lost_events(void) {
  fprintf(stderr, "WARNING: We have hit ENOBUFS! We are losing events.\n"
                  "This message means that the current netlink socket buffer size is too small.\n"
                  "Please, check --buffer-size in conntrack(8) manpage.\n");
}

int main(int argc, char **argv) {
  int protocol = -1;
  long long buffer_size = 0;
  long parent = -1;
  pid_t original_parent = getppid();

  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    const char *value = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(arg, "--version") == 0) {
      printf("%s v%s (effect-conntrack)\n", PROGNAME, VERSION);
      return 0;
    } else if (strcmp(arg, "-p") == 0 || strcmp(arg, "--proto") == 0) {
      if (!value) usage_error("-p needs a protocol");
      protocol = protocol_number(value);
      if (protocol < 0) usage_error("unknown protocol");
      i++;
    } else if (strcmp(arg, "--buffer-size") == 0 || strcmp(arg, "-b") == 0) {
      char *end;
      if (!value) usage_error("--buffer-size needs a number of bytes");
      buffer_size = strtoll(value, &end, 10);
      if (*value == '\0' || *end != '\0' || buffer_size < 0 || buffer_size > (1LL << 30))
        usage_error("--buffer-size must be a number of bytes from 0 to 1073741824");
      i++;
    } else if (strcmp(arg, "--queue-size") == 0) {
      char *end;
      if (!value) usage_error("--queue-size needs a number of bytes");
      long long q = strtoll(value, &end, 10);
      if (*value == '\0' || *end != '\0' || q < 0 || q > (1LL << 34))
        usage_error("--queue-size must be a number of bytes from 0 to 17179869184");
      queue.limit = (size_t)q;
      i++;
    } else if (strcmp(arg, "--parent-pid") == 0) {
      char *end;
      if (!value) usage_error("--parent-pid needs a pid");
      parent = strtol(value, &end, 10);
      if (*value == '\0' || *end != '\0' || parent <= 0) usage_error("--parent-pid must be a pid");
      i++;
    } else {
      usage_error("unknown argument");
    }
  }

  /* Die with the parent, even when the kernel cleared a death signal set before exec (file capabilities). */
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
    fprintf(stderr, "%s: prctl(PR_SET_PDEATHSIG): %s\n", PROGNAME, strerror(errno));
    return 1;
  }
  if (getppid() != (parent > 0 ? (pid_t)parent : original_parent)) {
    fprintf(stderr, "%s: the parent process is gone\n", PROGNAME);
    return 1;
  }

  /* SIGTERM and SIGINT are blocked except while waiting for events, so a stop is never missed. */
  sigset_t blocked, waiting;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGTERM);
  sigaddset(&blocked, SIGINT);
  sigprocmask(SIG_BLOCK, &blocked, &waiting);
  sigdelset(&waiting, SIGTERM);
  sigdelset(&waiting, SIGINT);
  struct sigaction action;
  memset(&action, 0, sizeof(action));
  action.sa_handler = on_signal;
  sigaction(SIGTERM, &action, NULL);
  sigaction(SIGINT, &action, NULL);

  struct nfct_handle *handle =
      nfct_open(CONNTRACK, NF_NETLINK_CONNTRACK_NEW | NF_NETLINK_CONNTRACK_UPDATE | NF_NETLINK_CONNTRACK_DESTROY);
  if (!handle) {
    fprintf(stderr, "%s v%s (effect-conntrack): Can't open netlink socket: %s\n", PROGNAME, VERSION,
            strerror(errno));
    return 1;
  }
  int fd = nfct_fd(handle);

  if (buffer_size > 0) {
    int size = (int)buffer_size;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  }
  int given = 0;
  socklen_t length = sizeof(given);
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &given, &length);
  /* The socket is bound to its groups (nfct_open did it): from now on no event is missed unless the kernel says so. */
  fprintf(stderr, "NOTICE: Netlink socket buffer size has been set to %d bytes.\n", given);

  /* A pipe or socket is written without blocking, so that events keep being read while the reader is busy. */
  struct stat st;
  if (fstat(STDOUT_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
    fcntl(STDOUT_FILENO, F_SETFL, fcntl(STDOUT_FILENO, F_GETFL) | O_NONBLOCK);

  static char buf[1 << 16];
  for (;;) {
    struct pollfd pfd[2] = {{.fd = fd, .events = queue_open() ? POLLIN : 0},
                            {.fd = STDOUT_FILENO, .events = queued() > 0 ? POLLOUT : 0}};
    int ready = ppoll(pfd, 2, NULL, &waiting);
    if (stop_signal) stop();
    if (ready < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "%s: poll: %s\n", PROGNAME, strerror(errno));
      return 1;
    }
    if (pfd[1].revents & (POLLERR | POLLHUP)) return 1; /* the reader is gone */
    /* Read what is queued in the socket (a bounded batch), then write what the reader takes. */
    for (int batch = 0; (pfd[0].revents & POLLIN) && batch < 256 && queue_open(); batch++) {
      ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        if (errno == ENOBUFS) {
          if (queue_write() != 0) return 1;
          lost_events();
          continue;
        }
        queue_write();
        fprintf(stderr, "%s v%s (effect-conntrack): failed to received netlink event: %s\n", PROGNAME, VERSION,
                strerror(errno));
        return 1;
      }
      if (n == 0) break;
      print_batch(buf, n, protocol);
    }
    if (queue_write() != 0) return 1;
    /* Say when the reader is so far behind that the socket is no longer read (events will be lost next). */
    static int full = 0;
    if (!queue_open() && !full) {
      fprintf(stderr, "%s: the reader is %zu bytes of events behind: the socket waits until it catches up\n", PROGNAME,
              queued());
      full = 1;
    } else if (queued() == 0) {
      full = 0;
    }
  }
}
