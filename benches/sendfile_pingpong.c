// Does sendfile(2) from a memory file cost a server less CPU than writev(2) from user
// memory, for one tile-sized response per request over loopback TCP? A client process
// sends a 16-byte request and reads the 100-byte header and 30,000-byte body back, one
// request at a time; the server answers from 1,800 distinct bodies (59 MB, beyond the
// CPU's caches, as a tile cache's bodies are), either with one writev (header and body,
// as hyper does) or with a write of the header and sendfile of the body from a memfd.
// Prints the server's CPU time (user + system) and the wall time per response.
// (benches/sendfile_copy.py measures a stream of bodies to a reader thread instead.)
//
//   gcc -O2 -o .data/sendfile_pingpong benches/sendfile_pingpong.c
//   .data/sendfile_pingpong 0 100000   # writev
//   .data/sendfile_pingpong 1 100000   # sendfile from a memfd
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/sendfile.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sys/wait.h>
#include <time.h>
#define SIZE 30000
#define BODIES 1800
#define SLOT 32768
static double cpu(void){struct rusage u;getrusage(RUSAGE_SELF,&u);return u.ru_utime.tv_sec+u.ru_utime.tv_usec/1e6+u.ru_stime.tv_sec+u.ru_stime.tv_usec/1e6;}
int main(int argc,char**argv){
  int mode=atoi(argv[1]); int n=atoi(argv[2]);
  char *heap=malloc((size_t)BODIES*SLOT); for(size_t i=0;i<(size_t)BODIES*SLOT;i++) heap[i]=rand();
  int mfd=memfd_create("t",0); ftruncate(mfd,(off_t)BODIES*SLOT); pwrite(mfd,heap,(size_t)BODIES*SLOT,0);
  int ls=socket(AF_INET,SOCK_STREAM,0); struct sockaddr_in a={0}; a.sin_family=AF_INET; a.sin_addr.s_addr=htonl(0x7f000001);
  int one=1; setsockopt(ls,SOL_SOCKET,SO_REUSEADDR,&one,4); bind(ls,(void*)&a,sizeof a); socklen_t al=sizeof a; getsockname(ls,(void*)&a,&al); listen(ls,1);
  if(fork()==0){ int c=socket(AF_INET,SOCK_STREAM,0); connect(c,(void*)&a,sizeof a); setsockopt(c,IPPROTO_TCP,TCP_NODELAY,&one,4);
    char *buf=malloc(1<<16); char req[16]={0};
    for(int i=0;i<n;i++){ write(c,req,16); long need=100+SIZE; while(need>0){ long r=read(c,buf,1<<16); if(r<=0) exit(1); need-=r; } }
    exit(0);}
  int s=accept(ls,0,0); setsockopt(s,IPPROTO_TCP,TCP_NODELAY,&one,4);
  char hdr[100]; memset(hdr,'h',100); char req[16];
  double c0=cpu(); struct timespec t0,t1; clock_gettime(CLOCK_MONOTONIC,&t0);
  for(int i=0;i<n;i++){ long got=0; while(got<16){ long r=read(s,req,16-got); if(r<=0) return 1; got+=r; }
    size_t k=((size_t)i*7919)%BODIES;
    if(mode==0){ struct iovec v[2]={{hdr,100},{heap+k*SLOT,SIZE}}; long w=writev(s,v,2); if(w!=100+SIZE){fprintf(stderr,"short %ld\n",w);} }
    else { write(s,hdr,100); off_t off=k*SLOT; long left=SIZE; while(left>0){ long w=sendfile(s,mfd,&off,left); if(w<=0) return 2; left-=w; } }
  }
  double c=cpu()-c0; clock_gettime(CLOCK_MONOTONIC,&t1);
  wait(0);
  printf("%s: server CPU %.2f us/resp, wall %.2f us/resp\n", mode?"sendfile memfd":"writev", c/n*1e6, ((t1.tv_sec-t0.tv_sec)+(t1.tv_nsec-t0.tv_nsec)/1e9)/n*1e6);
}
