/*
 * count_recvmmsg: the minimal UDP receiver the StdUdpRecv benchmark compares against.
 *
 *   count_recvmmsg <port> [rcvbuf_bytes (default 268435456)] [--copy | --ring]
 *
 * Binds 0.0.0.0:<port>, asks for a large receive buffer (SO_RCVBUFFORCE as root, else
 * SO_RCVBUF, which the kernel caps at net.core.rmem_max), enables SO_RXQ_OVFL and loops on
 * recvmmsg(batch 64, MSG_WAITFORONE) with a 10 ms SO_RCVTIMEO, only counting datagrams, bytes
 * and the socket's kernel drop counter, until SIGINT/SIGTERM. It then prints one line:
 *
 *   packets=N bytes=N kernel_drops=N
 *
 * --copy (optional, not part of the default baseline): additionally copy each datagram's 8192
 * payload bytes to its place in a 256 x 1 MiB frame ring in shared memory (slot = SLS frame
 * number mod 256, offset = packet number * 8192; SLS header of 48 bytes), i.e. the one payload
 * copy any frame-assembling receiver must make. It shows how much of StdUdpRecv's extra CPU over
 * the pure counter is that copy.
 *
 * --ring (optional, not part of the default baseline): receive each datagram straight into the
 * same kind of ring, scattered: the 48 header bytes into a small buffer, the payload into the next
 * 8192-byte place of the ring (places taken in arrival order, wrapping; no parsing), anything longer
 * into a spill buffer. It is the lower bound for any receiver that receives in place into a frame
 * ring, which StdUdpRecv does: it shows how much CPU writing 1 MiB per frame to ring memory costs,
 * as opposed to the default counter's reuse of one 576 KiB batch buffer that stays in the cache.
 *
 * Build: cc -O2 -o count_recvmmsg count_recvmmsg.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif
#ifndef SO_RCVBUFFORCE
#define SO_RCVBUFFORCE 33
#endif

#define BATCH 64
#define DGRAM_BYTES 9216 /* more than any jumbo datagram */
#define SLS_HEADER 48
#define PAYLOAD 8192
#define PACKETS_PER_FRAME 128
#define RING_SLOTS 256

static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv)
{
    int copy = argc > 1 && strcmp(argv[argc - 1], "--copy") == 0;
    int in_ring = argc > 1 && strcmp(argv[argc - 1], "--ring") == 0;
    if (copy || in_ring)
        argc--;
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s <port> [rcvbuf_bytes] [--copy | --ring]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    long long want = argc > 2 ? atoll(argv[2]) : 268435456LL;
    if (port <= 0 || port > 65535 || want <= 0 || want > 0x3fffffffLL) {
        fprintf(stderr, "bad port or buffer size\n");
        return 2;
    }

    /* No SA_RESTART: a signal interrupts recvmmsg with EINTR. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* The ring is mapped and pre-faulted (like StdUdpRecv's shm ring) before the port is bound,
       so that cost is outside the benchmark's measurement, which starts once the port is bound. */
    char *ring = NULL;
    if (copy || in_ring) {
        ring = mmap(NULL, (size_t)RING_SLOTS * PACKETS_PER_FRAME * PAYLOAD, PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (ring == MAP_FAILED) { perror("mmap"); return 1; }
    }

    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) { perror("socket"); return 1; }

    int v = (int)want;
    if (geteuid() != 0 || setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v) != 0) {
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v) != 0)
            perror("setsockopt(SO_RCVBUF)");
    }
    int got = 0;
    socklen_t gl = sizeof got;
    getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &gl);

    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one) != 0) { perror("setsockopt(SO_RXQ_OVFL)"); return 1; }
    struct timeval tv = { .tv_sec = 0, .tv_usec = 10000 };
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) { perror("setsockopt(SO_RCVTIMEO)"); return 1; }

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = htons((uint16_t)port);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) { perror("bind"); return 1; }
    /* getsockopt reports twice the usable size (the kernel doubles the request for overhead). */
    fprintf(stderr, "count_recvmmsg: udp port %d, receive buffer %d bytes (asked %lld, getsockopt %d)\n",
            port, got / 2, want, got);

    static char buffers[BATCH][DGRAM_BYTES] __attribute__((aligned(4096)));
    static char control[BATCH][CMSG_SPACE(sizeof(uint32_t))];
    struct iovec iov[BATCH][3];
    struct mmsghdr msgs[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < BATCH; i++) {
        iov[i][0].iov_base = buffers[i];
        iov[i][0].iov_len = in_ring ? SLS_HEADER : DGRAM_BYTES;
        iov[i][2].iov_base = buffers[i] + SLS_HEADER;
        iov[i][2].iov_len = DGRAM_BYTES - SLS_HEADER - PAYLOAD;
        msgs[i].msg_hdr.msg_iov = iov[i];
        msgs[i].msg_hdr.msg_iovlen = in_ring ? 3 : 1;
        msgs[i].msg_hdr.msg_control = control[i];
    }
    const unsigned long long ring_places = (unsigned long long)RING_SLOTS * PACKETS_PER_FRAME;

    unsigned long long packets = 0, bytes = 0;
    uint32_t drops = 0; /* the kernel's cumulative counter, from the last datagram's cmsg */
    int rc = 0;
    while (!stop) {
        for (int i = 0; i < BATCH; i++) {
            msgs[i].msg_hdr.msg_controllen = sizeof control[i];
            if (in_ring) {
                iov[i][1].iov_base = ring + ((packets + (unsigned)i) % ring_places) * PAYLOAD;
                iov[i][1].iov_len = PAYLOAD;
            }
        }
        int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                continue;
            perror("recvmmsg");
            rc = 1;
            break;
        }
        for (int i = 0; i < n; i++) {
            bytes += msgs[i].msg_len;
            if (copy && msgs[i].msg_len == SLS_HEADER + PAYLOAD) {
                uint64_t frame;
                uint32_t packet;
                memcpy(&frame, buffers[i], sizeof frame);
                memcpy(&packet, buffers[i] + 12, sizeof packet);
                if (packet < PACKETS_PER_FRAME)
                    memcpy(ring + ((frame % RING_SLOTS) * PACKETS_PER_FRAME + packet) * PAYLOAD,
                           buffers[i] + SLS_HEADER, PAYLOAD);
            }
        }
        packets += (unsigned)n;
        struct msghdr *h = &msgs[n - 1].msg_hdr;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL)
                memcpy(&drops, CMSG_DATA(c), sizeof drops);
    }
    printf("packets=%llu bytes=%llu kernel_drops=%u\n", packets, bytes, drops);
    fflush(stdout);
    close(fd);
    return rc;
}
