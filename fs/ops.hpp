// The libfuse low-level handlers, each in the file named after it (named in the comments), with
// the logic of its operation.
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

namespace sitesfs::fs::ops {

// init.cpp
void init(void* userdata, fuse_conn_info* conn);
// lookup.cpp
void lookup(fuse_req_t req, fuse_ino_t parent, const char* name);
void forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets);
// attr.cpp
void getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi);
void statfs(fuse_req_t req, fuse_ino_t ino);
// dir.cpp
void opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
// mkdir.cpp
void mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode);
// unlink.cpp
void unlink(fuse_req_t req, fuse_ino_t parent, const char* name);
void rmdir(fuse_req_t req, fuse_ino_t parent, const char* name);
// create.cpp
void create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi);
void mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev);
// link.cpp
void symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name);
void link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname);
// open.cpp
void open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
// read.cpp
void read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
// write.cpp
void write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off, fuse_file_info* fi);
// release.cpp
void flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);
void release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
// poll.cpp
void poll(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, fuse_pollhandle* ph);
// rename.cpp
void rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
            unsigned int flags);

}  // namespace sitesfs::fs::ops
