/*
 * The straight reader's scan of a conntrack line (src/internal/straight.ts), compiled to WebAssembly: it checks the
 * whole line and says where each value lies, or that the line is not one it takes (the JavaScript readers then read
 * it). It accepts exactly what the straight reader accepts; the JavaScript side makes the strings and the objects.
 *
 * Built by scripts/build-wasm.mjs (clang --target=wasm32) into src/internal/lineScannerWasm.ts.
 */
typedef unsigned char u8;
typedef unsigned long long u64;
typedef long long i64;

#define MAX_SAFE 9007199254740991ULL
#define NONE 0
#define IPV4 4
#define IPV6 6

/* What the line read last holds: small numbers and offsets from the line's start in `ints`, the numbers that may
 * pass 2^31 in `numbers` and `small`; see src/internal/lineScanner.ts. */
enum {
  TYPE, FAMILY, PROTO, STATE,
  OSRC_FROM, OSRC_TO, ODST_FROM, ODST_TO, RSRC_FROM, RSRC_TO, RDST_FROM, RDST_TO,
  OSPORT, ODPORT, RSPORT, RDPORT, OZONE, RZONE, ZONE,
  FLAGS, SECCTX_FROM, SECCTX_TO, SECCTX_SAME, TUPLES_FROM, TUPLES_END, TUPLES_UNREPLIED, KEY, SLOT, TAKEN,
  INTS
};
enum { TIMEOUT, OPACKETS, OBYTES, RPACKETS, RBYTES, MARK, USE, ID, DELTA_TIME, SECMARK, NUMBERS };
enum { F_UNREPLIED = 1, F_ASSURED = 2, F_OFFLOAD = 4, F_HW_OFFLOAD = 8 };

static int ints[INTS];
static double numbers[NUMBERS];
/* The same numbers where they fit in 30 bits (JavaScript then keeps them as small integers, not heap numbers); -1
 * where the line has no such field, -2 where the number is only in `numbers`. */
static int small[NUMBERS];
extern u8 __heap_base;

/* Where the line's bytes go (the rest of memory), and where the results are. */
__attribute__((export_name("input"))) u8 *input(void) { return &__heap_base; }
__attribute__((export_name("ints"))) int *ints_at(void) { return ints; }
__attribute__((export_name("numbers"))) double *numbers_at(void) { return numbers; }
__attribute__((export_name("small"))) int *small_at(void) { return small; }

static void set_number(int k, i64 n) {
  numbers[k] = (double)n;
  small[k] = n <= 0x3fffffff ? (int)n : -2;
}

/* The secctx of the last line read that had one: a line with the same one is told so (SECCTX_SAME). */
#define SECCTX_ROOM 256
static u8 last_secctx[SECCTX_ROOM + 8];
static long last_secctx_length = -1;

static const u8 *scan_end;

static inline u64 load64(const u8 *p) {
  u64 v;
  __builtin_memcpy(&v, p, 8);
  return v;
}

/* A key's bytes as two 64-bit words, first byte lowest, and the masks of the bytes they hold: constants, for keys
 * written as string literals (of at most 16 bytes). */
#define LEN(s) ((int)sizeof(s) - 1)
#define BYTE(s, j) ((j) < LEN(s) ? (u64)(u8)(s)[(j) < LEN(s) ? (j) : 0] << (8 * ((j) % 8)) : 0)
#define WORD0(s) (BYTE(s, 0) | BYTE(s, 1) | BYTE(s, 2) | BYTE(s, 3) | BYTE(s, 4) | BYTE(s, 5) | BYTE(s, 6) | BYTE(s, 7))
#define WORD1(s) \
  (BYTE(s, 8) | BYTE(s, 9) | BYTE(s, 10) | BYTE(s, 11) | BYTE(s, 12) | BYTE(s, 13) | BYTE(s, 14) | BYTE(s, 15))
#define MASK(n, from) ((n) - (from) >= 8 ? ~0ULL : (n) - (from) <= 0 ? 0ULL : (1ULL << (8 * ((n) - (from)))) - 1)

/* Whether the key of n bytes (words w0, w1) starts at `i` and ends at or before `end`. Memory holds 8 bytes past
 * any line. */
static inline __attribute__((always_inline)) int is_key(const u8 *i, const u8 *end, int n, u64 w0, u64 w1) {
  if (end - i < n) return 0;
  if ((load64(i) & MASK(n, 0)) != w0) return 0;
  return n <= 8 || (load64(i + 8) & MASK(n, 8)) == w1;
}
#define KEY(i, end, s) is_key((i), (end), LEN(s), WORD0(s), WORD1(s))

/* The states conntrack prints, in the order of src/internal/states.ts (STATE is the index + 1), as words. */
#define WORD2(s) \
  (BYTE(s, 16) | BYTE(s, 17) | BYTE(s, 18) | BYTE(s, 19) | BYTE(s, 20) | BYTE(s, 21) | BYTE(s, 22) | BYTE(s, 23))
#define STATE_KEY(s) {LEN(s), WORD0(s), WORD1(s), WORD2(s)}
static const struct {
  int n;
  u64 w0, w1, w2;
} STATES[] = {
  STATE_KEY("NONE"),
  STATE_KEY("SYN_SENT"),
  STATE_KEY("SYN_RECV"),
  STATE_KEY("ESTABLISHED"),
  STATE_KEY("FIN_WAIT"),
  STATE_KEY("CLOSE_WAIT"),
  STATE_KEY("LAST_ACK"),
  STATE_KEY("TIME_WAIT"),
  STATE_KEY("CLOSE"),
  STATE_KEY("SYN_SENT2"),
  STATE_KEY("CLOSED"),
  STATE_KEY("COOKIE_WAIT"),
  STATE_KEY("COOKIE_ECHOED"),
  STATE_KEY("SHUTDOWN_SENT"),
  STATE_KEY("SHUTDOWN_RECD"),
  STATE_KEY("SHUTDOWN_ACK_SENT"),
  STATE_KEY("HEARTBEAT_SENT"),
  STATE_KEY("HEARTBEAT_ACKED"),
  STATE_KEY("REQUEST"),
  STATE_KEY("RESPOND"),
  STATE_KEY("PARTOPEN"),
  STATE_KEY("OPEN"),
  STATE_KEY("CLOSEREQ"),
  STATE_KEY("CLOSING"),
  STATE_KEY("TIMEWAIT"),
};
#define STATE_COUNT ((int)(sizeof(STATES) / sizeof(STATES[0])))

static const u8 *skip(const u8 *i, const u8 *end) {
  while (i < end && *i == 32) i++;
  return i;
}

/* 1 to 16 digits up to a space or `end`, at most 2^53 - 1; else -1. */
static i64 decimal(const u8 *k, const u8 *end) {
  const u8 *from = k;
  u64 n = 0;
  while (k < end) {
    unsigned d = (unsigned)*k - 48u;
    if (d > 9) break;
    n = n * 10 + d;
    k++;
  }
  scan_end = k;
  if (k == from || k - from > 16 || n > MAX_SAFE || (k < end && *k != 32)) return -1;
  return (i64)n;
}

static int is_ipv4(const u8 *from, const u8 *to) {
  int dots = 0, digits = 0, octet = 0;
  for (const u8 *k = from; k < to; k++) {
    u8 c = *k;
    if (c == 46) {
      if (digits == 0) return 0;
      dots++;
      digits = 0;
      octet = 0;
    } else if (c >= 48 && c <= 57) {
      octet = octet * 10 + c - 48;
      if (++digits > 3 || octet > 255) return 0;
    } else {
      return 0;
    }
  }
  return dots == 3 && digits > 0;
}

static int is_ipv6(const u8 *from, const u8 *to) {
  long n = to - from;
  if (n < 2 || n > 45) return 0;
  const u8 *k = from;
  int groups = 0, digits = 0, gap = 0, after_gap = 0;
  if (*from == 58) {
    if (from[1] != 58) return 0;
    gap = 1;
    after_gap = 1;
    k = from + 2;
  }
  const u8 *group_start = k;
  for (; k < to; k++) {
    u8 c = *k;
    if (c == 58) {
      if (digits == 0) return 0;
      groups++;
      digits = 0;
      after_gap = 0;
      if (k + 1 < to && k[1] == 58) {
        if (gap) return 0;
        gap = 1;
        after_gap = 1;
        k++;
      }
      group_start = k + 1;
    } else if (c == 46) {
      if (!is_ipv4(group_start, to)) return 0;
      groups += 2;
      return gap ? groups <= 7 : groups == 8;
    } else {
      u8 h = c | 32;
      if (!((c >= 48 && c <= 57) || (h >= 97 && h <= 102)) || ++digits > 4) return 0;
      after_gap = 0;
    }
  }
  if (digits > 0) groups++;
  else if (!after_gap) return 0;
  return gap ? groups <= 7 : groups == 8;
}

/* The family of the address up to the next space or `end`, or NONE. */
static int address_family(const u8 *k, const u8 *end) {
  const u8 *from = k;
  int ok = 1, colon = 0, dots = 0, octet = 0;
  const u8 *octet_from = k;
  for (; k < end; k++) {
    u8 d = *k;
    if (d >= 48 && d <= 57) {
      octet = octet * 10 + d - 48;
      if (octet > 100000) octet = 100000;
    } else if (d == 46) {
      if (k == octet_from || k - octet_from > 3 || octet > 255) ok = 0;
      dots++;
      octet_from = k + 1;
      octet = 0;
    } else if (d == 32) {
      break;
    } else if (d == 58) {
      colon = 1;
    } else {
      ok = 0;
    }
  }
  scan_end = k;
  if (colon) return is_ipv6(from, k) ? IPV6 : NONE;
  return ok && dots == 3 && k > octet_from && k - octet_from <= 3 && octet <= 255 ? IPV4 : NONE;
}

/* Whether the bytes from `v` repeat [from, to) and end there, at a space or `end`. */
static int repeats(const u8 *v, const u8 *end, const u8 *from, const u8 *to) {
  const u8 *stop = v + (to - from);
  if (stop > end || (stop < end && *stop != 32)) return 0;
  for (long k = 0; k < to - from; k++)
    if (v[k] != from[k]) return 0;
  scan_end = stop;
  return 1;
}

/* The number after the key at `i`, at most `max`; else -1. */
static inline __attribute__((always_inline)) i64 number_at(const u8 *i, const u8 *end, int n, u64 w0, u64 w1,
                                                           u64 max) {
  if (!is_key(i, end, n, w0, w1)) return -1;
  i64 v = decimal(i + n, end);
  return v < 0 || (u64)v > max ? -1 : v;
}
#define NUMBER_AT(i, end, s, max) number_at((i), (end), LEN(s), WORD0(s), WORD1(s), (max))

/* sport=N dport=N at `i` into ints[at], ints[at + 1]: where the next field starts, or 0. */
static const u8 *ports(const u8 *i, const u8 *end, int at) {
  i64 sport = NUMBER_AT(i, end, "sport=", 0xffff);
  if (sport < 0) return 0;
  i = skip(scan_end, end);
  i64 dport = NUMBER_AT(i, end, "dport=", 0xffff);
  if (dport < 0) return 0;
  ints[at] = (int)sport;
  ints[at + 1] = (int)dport;
  return skip(scan_end, end);
}

/* packets=N or bytes=N at `i` into numbers[packets], numbers[packets + 1]: where it ends, or 0. */
static const u8 *counter(const u8 *i, const u8 *end, int packets) {
  if (*i == 112 /* p */) {
    i64 n = NUMBER_AT(i, end, "packets=", MAX_SAFE);
    if (n < 0) return 0;
    set_number(packets, n);
    return scan_end;
  }
  if (*i == 98 /* b */) {
    i64 n = NUMBER_AT(i, end, "bytes=", MAX_SAFE);
    if (n < 0) return 0;
    set_number(packets + 1, n);
    return scan_end;
  }
  return 0;
}

/* The end of the flag at `i`, if it is there and ends at a space or `end`; else 0. */
static inline __attribute__((always_inline)) const u8 *flag_at(const u8 *i, const u8 *end, int n, u64 w0, u64 w1) {
  if (!is_key(i, end, n, w0, w1)) return 0;
  const u8 *e = i + n;
  return e < end && *e != 32 ? 0 : e;
}
#define FLAG_AT(i, end, s) flag_at((i), (end), LEN(s), WORD0(s), WORD1(s))

static const u8 *line;

/* The state [i, e): its index in STATES + 1, or 0. */
static int state_of(const u8 *i, const u8 *e) {
  long n = e - i;
  if (n > 24) return 0;
  u64 w0 = load64(i) & MASK(n, 0);
  for (int s = 0; s < STATE_COUNT; s++) {
    if (STATES[s].n != n || STATES[s].w0 != w0) continue;
    if (n <= 8 || ((load64(i + 8) & MASK(n, 8)) == STATES[s].w1 && (n <= 16 || (load64(i + 16) & MASK(n, 16)) == STATES[s].w2)))
      return s + 1;
  }
  return 0;
}

/* The secctx [from, to) of a line taken: whether it is the one of the last line taken that had one; it becomes that
 * one. */
static int same_secctx(const u8 *from, const u8 *to) {
  long n = to - from;
  if (n == last_secctx_length) {
    long k = 0;
    while (k + 8 <= n && load64(last_secctx + k) == load64(from + k)) k += 8;
    while (k < n && last_secctx[k] == from[k]) k++;
    if (k == n) return 1;
  }
  if (n > SECCTX_ROOM) {
    last_secctx_length = -1;
    return 0;
  }
  for (long k = 0; k < n; k++) last_secctx[k] = from[k];
  last_secctx_length = n;
  return 0;
}

/* One field or flag after the reply tuple: where it ends, or 0. */
static const u8 *trailer(const u8 *i, const u8 *end) {
  i64 n;
  const u8 *e;
  switch (*i) {
    case 91 /* [ */:
      if (KEY(i, end, "[ASSURED]")) {
        if (!(e = FLAG_AT(i, end, "[ASSURED]"))) return 0;
        ints[FLAGS] |= F_ASSURED;
      } else if (KEY(i, end, "[OFFLOAD]")) {
        if (!(e = FLAG_AT(i, end, "[OFFLOAD]"))) return 0;
        ints[FLAGS] |= F_OFFLOAD;
      } else if (KEY(i, end, "[UNREPLIED]")) {
        if (!(e = FLAG_AT(i, end, "[UNREPLIED]"))) return 0;
        ints[FLAGS] |= F_UNREPLIED;
      } else if (KEY(i, end, "[HW_OFFLOAD]")) {
        if (!(e = FLAG_AT(i, end, "[HW_OFFLOAD]"))) return 0;
        ints[FLAGS] |= F_HW_OFFLOAD;
      } else
        return 0;
      return e;
    case 109 /* m */:
      if ((n = NUMBER_AT(i, end, "mark=", 0xffffffffULL)) < 0) return 0;
      set_number(MARK, n);
      return scan_end;
    case 117 /* u */:
      if ((n = NUMBER_AT(i, end, "use=", 0xffffffffULL)) < 0) return 0;
      set_number(USE, n);
      return scan_end;
    case 105 /* i */:
      if ((n = NUMBER_AT(i, end, "id=", 0xffffffffULL)) < 0) return 0;
      set_number(ID, n);
      return scan_end;
    case 122 /* z */:
      if ((n = NUMBER_AT(i, end, "zone=", 0xffff)) >= 0) {
        ints[ZONE] = (int)n;
        return scan_end;
      }
      if ((n = NUMBER_AT(i, end, "zone-reply=", 0xffff)) < 0) return 0;
      ints[RZONE] = (int)n;
      return scan_end;
    case 100 /* d */:
      if ((n = NUMBER_AT(i, end, "delta-time=", MAX_SAFE)) < 0) return 0;
      set_number(DELTA_TIME, n);
      return scan_end;
    case 115 /* s */:
      if (KEY(i, end, "secctx=")) {
        if (i + 7 >= end || i[7] == 32) return 0;
        e = i + 7;
        while (e < end && *e != 32) e++;
        ints[SECCTX_FROM] = (int)(i + 7 - line);
        ints[SECCTX_TO] = (int)(e - line);
        return e;
      }
      if ((n = NUMBER_AT(i, end, "secmark=", 0xffffffffULL)) < 0) return 0;
      set_number(SECMARK, n);
      return scan_end;
    default:
      return counter(i, end, RPACKETS);
  }
}

/* A reply's address at `v`: the original's [from, to) again (ints[at]: -1), or one of `family` (ints[at], ints[at + 1]:
 * where it lies); 0 if it is neither. */
static int reply_address(const u8 *v, const u8 *end, const u8 *from, const u8 *to, int family, int at) {
  if (repeats(v, end, from, to)) {
    ints[at] = -1;
    return 1;
  }
  if (address_family(v, end) != family) return 0;
  ints[at] = (int)(v - line);
  ints[at + 1] = (int)(scan_end - line);
  return 1;
}

/* The original tuple, what may follow it, and the reply tuple, from the original's `src=` at `i`: where the next
 * field starts, or 0. */
static const u8 *tuples(const u8 *i, const u8 *end, int declared) {
  const u8 *src_from = i + 4;
  int family = address_family(src_from, end);
  const u8 *src_to = scan_end;
  if (family == NONE || (declared != NONE && declared != family)) return 0;
  ints[OSRC_FROM] = (int)(src_from - line);
  ints[OSRC_TO] = (int)(src_to - line);
  i = skip(src_to, end);
  if (!KEY(i, end, "dst=")) return 0;
  const u8 *dst_from = i + 4;
  if (address_family(dst_from, end) != family) return 0;
  const u8 *dst_to = scan_end;
  ints[ODST_FROM] = (int)(dst_from - line);
  ints[ODST_TO] = (int)(dst_to - line);
  i = ports(skip(dst_to, end), end, OSPORT);
  if (!i) return 0;

  for (;;) {
    u8 first = i < end ? *i : 0;
    const u8 *next;
    if (first == 115 /* s */ && KEY(i, end, "src=")) break;
    if (first == 122 /* z */) {
      i64 zone = NUMBER_AT(i, end, "zone-orig=", 0xffff);
      if (zone < 0) return 0;
      ints[OZONE] = (int)zone;
      next = scan_end;
    } else if (first == 91 /* [ */) {
      next = FLAG_AT(i, end, "[UNREPLIED]");
      if (next) {
        ints[FLAGS] |= F_UNREPLIED;
        ints[TUPLES_UNREPLIED] = 1;
      }
    } else
      next = counter(i, end, OPACKETS);
    if (!next) return 0;
    i = skip(next, end);
  }

  if (!reply_address(i + 4, end, dst_from, dst_to, family, RSRC_FROM)) return 0;
  i = skip(scan_end, end);
  if (!KEY(i, end, "dst=")) return 0;
  if (!reply_address(i + 4, end, src_from, src_to, family, RDST_FROM)) return 0;
  i = ports(skip(scan_end, end), end, RSPORT);
  if (!i) return 0;
  ints[FAMILY] = family;
  ints[TUPLES_END] = (int)(scan_end - line);
  return i;
}

/*
 * The tuples of a connection's last event (see src/internal/lineScanner.ts): a direct-mapped cache of KEEP_SLOTS
 * slots, each holding the bytes of one event's tuples (from the original's `src=` to the end of the reply's `dport=`
 * value), picked by the line's key, its last 4 bytes (the last digits of conntrack's id).
 */
#define KEEP_SLOTS 4096
#define KEEP_WIDTH 256
static u8 kept[KEEP_SLOTS * KEEP_WIDTH + 8];
static int kept_length[KEEP_SLOTS];
static int kept_key[KEEP_SLOTS];

/* Finds the line's key and slot, and whether the slot holds this line's tuples (TAKEN: 1). */
static void look_up(const u8 *p, const u8 *end) {
  ints[TAKEN] = 0;
  if (end - p < 4) {
    ints[KEY] = 0;
    return;
  }
  unsigned key;
  __builtin_memcpy(&key, end - 4, 4);
  unsigned slot = (key * 0x9e3779b1u) >> 20;
  ints[KEY] = (int)key;
  ints[SLOT] = (int)slot;
  long n = ints[TUPLES_END] - ints[TUPLES_FROM];
  if (key == 0 || kept_key[slot] != (int)key || kept_length[slot] != n) return;
  const u8 *a = kept + slot * KEEP_WIDTH;
  const u8 *b = p + ints[TUPLES_FROM];
  long k = 0;
  while (k + 8 <= n && load64(a + k) == load64(b + k)) k += 8;
  while (k < n && a[k] == b[k]) k++;
  ints[TAKEN] = k == n;
}

/* Keeps the tuples of the line scanned last, at `p`, in its slot: 1 if it did (tuples too long are not kept). */
__attribute__((export_name("keep"))) int keep(const u8 *p) {
  long n = ints[TUPLES_END] - ints[TUPLES_FROM];
  if (ints[KEY] == 0 || n <= 0 || n > KEEP_WIDTH) return 0;
  int slot = ints[SLOT];
  __builtin_memcpy(kept + slot * KEEP_WIDTH, p + ints[TUPLES_FROM], (unsigned long)n);
  kept_length[slot] = (int)n;
  kept_key[slot] = ints[KEY];
  return 1;
}

/* Forgets what the slot of the line scanned last holds, if it is the line's key's (its connection was destroyed):
 * 1 if it did. */
__attribute__((export_name("forget"))) int forget(void) {
  if (ints[KEY] == 0 || kept_key[ints[SLOT]] != ints[KEY] || kept_length[ints[SLOT]] == 0) return 0;
  kept_length[ints[SLOT]] = 0;
  return 1;
}

/* Forgets every slot. */
__attribute__((export_name("forget_all"))) void forget_all(void) {
  for (int slot = 0; slot < KEEP_SLOTS; slot++) kept_length[slot] = 0;
}

/* Reads the line [p, end) (no line break): 1, with its values in `ints` and `numbers`, or 0 when it is not one this
 * reader takes. Memory must hold 8 bytes past `end`. With `tuples_kept`, also looks its tuples up among those kept. */
__attribute__((export_name("scan"))) int scan(const u8 *p, const u8 *end, int events, int tuples_kept) {
  if (end - p > 1000 || end <= p || end[-1] <= 32) return 0;
  line = p;
  ints[TYPE] = ints[STATE] = ints[FLAGS] = ints[TUPLES_UNREPLIED] = 0;
  ints[OZONE] = ints[RZONE] = ints[ZONE] = ints[SECCTX_FROM] = -1;
  for (int k = 0; k < NUMBERS; k++) small[k] = -1;
  const u8 *i = skip(p, end);

  if (*i == 91) {
    if (!events) return 0;
    if (KEY(i, end, "[NEW]")) {
      ints[TYPE] = 1;
      i += LEN("[NEW]");
    } else if (KEY(i, end, "[UPDATE]")) {
      ints[TYPE] = 2;
      i += LEN("[UPDATE]");
    } else if (KEY(i, end, "[DESTROY]")) {
      ints[TYPE] = 3;
      i += LEN("[DESTROY]");
    } else
      return 0;
    if (i >= end || *i != 32) return 0;
    i = skip(i, end);
  } else if (events)
    return 0;

  int declared = NONE;
  if (KEY(i, end, "ipv4 ") || KEY(i, end, "ipv6 ")) {
    declared = i[3] == 52 ? IPV4 : IPV6;
    i = skip(i + 5, end);
    if (decimal(i, end) != (declared == IPV4 ? 2 : 10)) return 0;
    i = skip(scan_end, end);
  }
  int protonum;
  if (KEY(i, end, "tcp ")) protonum = 6;
  else if (KEY(i, end, "udp ")) protonum = 17;
  else return 0;
  i = skip(i + 4, end);
  if (decimal(i, end) != protonum) return 0;
  ints[PROTO] = protonum;
  i = skip(scan_end, end);
  if (i < end && *i >= 48 && *i <= 57) {
    i64 timeout = decimal(i, end);
    if (timeout < 0) return 0;
    set_number(TIMEOUT, timeout);
    i = skip(scan_end, end);
  }
  if (i < end && *i >= 65 && *i <= 90) {
    const u8 *e = i;
    while (e < end && *e != 32) e++;
    ints[STATE] = state_of(i, e);
    if (ints[STATE] == 0) return 0;
    i = skip(e, end);
  }

  if (!KEY(i, end, "src=")) return 0;
  ints[TUPLES_FROM] = (int)(i - p);
  i = tuples(i, end, declared);
  if (!i) return 0;

  while (i < end) {
    const u8 *next = trailer(i, end);
    if (!next) return 0;
    i = skip(next, end);
  }
  if (ints[SECCTX_FROM] >= 0) ints[SECCTX_SAME] = same_secctx(p + ints[SECCTX_FROM], p + ints[SECCTX_TO]);
  if (tuples_kept) look_up(p, end);
  return 1;
}
