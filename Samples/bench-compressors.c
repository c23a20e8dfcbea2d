// Per-cluster compressor candidates for qcow2 `convert -c` (Formats/performance.md, "Faster
// encoders, measured and not used"): zlib 6 (QEMU's bytes), vmimg's path (entropy + igzip-1 pre-test, then zlib 6)
// and ISA-L igzip level 3 with zlib 6 below a ratio threshold. 64 KiB clusters, 4 KiB window (QEMU
// inflates with windowBits -12), output capped at cluster_size - 1 as QEMU does; all-zero clusters
// skipped as convert skips them. Sizes are relative to zlib 6 over the whole output. Last, by 5%
// bucket of igzip 3's own ratio: clusters, both sizes, igzip's size penalty and zlib's CPU (where
// igzip loses size; "Faster encoders, measured and not used").
//
//   gcc -O2 -o /tmp/bench-compressors Samples/bench-compressors.c -lisal -lz -lm
//   /tmp/bench-compressors /tmp/vmimg-bench-full/disk.raw
#include <isa-l/igzip_lib.h>
#include <zlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define CS 65536
static double now(){struct timespec t;clock_gettime(CLOCK_PROCESS_CPUTIME_ID,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static z_stream zs;
static long zl(const unsigned char*in,unsigned char*out){ deflateReset(&zs);
  zs.next_in=(unsigned char*)in; zs.avail_in=CS; zs.next_out=out; zs.avail_out=CS-1;
  int r=deflate(&zs,Z_FINISH); return (r==Z_STREAM_END)?(long)zs.total_out:-1;}
static unsigned char lb[ISAL_DEF_LVL3_DEFAULT];
static long is(const unsigned char*in,unsigned char*out,int level){
  struct isal_zstream s; isal_deflate_stateless_init(&s); s.level=level; s.level_buf=lb; s.level_buf_size=sizeof lb;
  s.hist_bits=12; s.gzip_flag=IGZIP_DEFLATE; s.flush=NO_FLUSH; s.end_of_stream=1; s.next_in=(unsigned char*)in; s.avail_in=CS; s.next_out=out; s.avail_out=CS-1;
  long n=isal_deflate_stateless(&s)==COMP_OK?(long)s.total_out:-1;
  __asm__ volatile("vzeroupper" ::: "memory");  /* else zlib after it runs ~1.9x slower: Samples/bench-vzeroupper.c */
  return n;}
static double ent(const unsigned char*in){unsigned c[256]={0};for(int i=0;i<CS;i++)c[in[i]]++;double b=0;for(int k=0;k<256;k++)if(c[k]){double p=(double)c[k]/CS;b-=p*log2(p);}return b;}
int main(int argc,char**v){
  deflateInit2(&zs,6,Z_DEFLATED,-12,9,Z_DEFAULT_STRATEGY);
  double th[]={0.0,0.25,0.30,0.35,0.40,1.01}; int NT=6;
  FILE*f=fopen(v[1],"rb"); static unsigned char in[CS],out[CS],zero[CS];
  long long qemu=0, cur=0, sz[6]={0}; double tq=0,tcur=0,t[6]={0};
  long bn[21]={0}; double bz[21]={0},bi[21]={0},bt[21]={0};
  while(fread(in,1,CS,f)==CS){
    if(!memcmp(in,zero,CS)) continue;
    double a=now(); long z=zl(in,out); double tz=now()-a; long zs6= z<0?CS:z;
    qemu+=zs6; tq+=tz;
    a=now(); double e=ent(in); long i1= e>=7.0? is(in,out,1):0; double tpre=now()-a;
    if(e>=7.0 && i1<0){ cur+=CS; tcur+=tpre; } else { cur+=zs6; tcur+=tpre+tz; }
    a=now(); long i3=is(in,out,3); double t3=now()-a;
    { long i3s= i3<0?CS:i3; int b=(int)((double)i3s/CS*20); if(b>20) b=20; bn[b]++; bz[b]+=zs6; bi[b]+=i3s; bt[b]+=tz; }
    for(int k=0;k<NT;k++){ long r; double tt=t3;
      if(i3<0){ if(e>=7.0){ r=CS; } else { r=zs6; tt+=tz; } }
      else if((double)i3/CS < th[k]){ r=zs6; tt+=tz; } else r=i3;
      sz[k]+=r; t[k]+=tt; }
  }
  printf("qemu zlib6: size %lld cpu %.2f | current vmimg: size %.4f cpu %.2f (%.2f of qemu)\n",qemu,tq,(double)cur/qemu,tcur,tcur/tq);
  for(int k=0;k<NT;k++) printf("isal3, zlib6 below %.2f: size %.4f  cpu %.2f  (%.2f of current vmimg)\n",th[k],(double)sz[k]/qemu,t[k],t[k]/tcur);
  for(int b=0;b<=20;b++) if(bn[b]) printf("igzip3 ratio %.2f-%.2f: %5ld clusters, zlib6 %10.0f, igzip3 %10.0f (%.3f), zlib6 cpu %.2f\n",
    b/20.0,(b+1)/20.0,bn[b],bz[b],bi[b],bi[b]/bz[b],bt[b]);
}
