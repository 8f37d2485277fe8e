/* Shared by the files of iommu/ only. */
#ifndef IOMMU_INTERNAL_H
#define IOMMU_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

/* root+path into buf, trailing newline and blanks dropped. 0 or -errno. */
int iommu_read_text(const char *root, const char *path, char *buf, size_t len);
bool iommu_path_exists(const char *root, const char *path);

#endif
