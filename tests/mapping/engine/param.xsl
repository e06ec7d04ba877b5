<?xml version="1.0"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:param name="sender"/>
  <xsl:template match="/"><out sender="{$sender}" items="{count(//item)}"><xsl:value-of select="/*/@id"/></out></xsl:template>
</xsl:stylesheet>
